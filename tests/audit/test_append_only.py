"""The audit trail is append-only in the database (audit 0001): UPDATE and DELETE are refused."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from django.db import IntegrityError, connection, transaction

from tests.factories import AccountFactory, UserFactory

pytestmark = pytest.mark.django_db


def _refused(sql: str, params: list) -> str:
    with pytest.raises(IntegrityError) as excinfo, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    return str(excinfo.value)


def test_an_audit_row_cannot_be_updated():
    entry = LogEntry.objects.get_for_object(AccountFactory()).get()
    message = _refused("UPDATE auditlog_logentry SET object_repr = 'forged' WHERE id = %s", [entry.pk])
    assert "the audit trail is append-only (UPDATE refused on auditlog_logentry)" in message
    entry.refresh_from_db()
    assert entry.object_repr != "forged"


def test_an_audit_row_cannot_be_deleted():
    entry = LogEntry.objects.get_for_object(AccountFactory()).get()
    message = _refused("DELETE FROM auditlog_logentry WHERE id = %s", [entry.pk])
    assert "the audit trail is append-only (DELETE refused on auditlog_logentry)" in message
    assert LogEntry.objects.filter(pk=entry.pk).exists()


def test_the_orm_cannot_delete_audit_rows_either():
    AccountFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        LogEntry.objects.all().delete()
    assert LogEntry.objects.exists()


def test_a_staff_user_who_has_acted_cannot_be_deleted():
    """Their rows would lose their actor: deactivate them instead."""
    user = UserFactory()
    account = AccountFactory()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO auditlog_logentry (content_type_id, object_pk, object_id, object_repr, action, changes_text,"
            " actor_id, timestamp) SELECT content_type_id, object_pk, object_id, object_repr, 1, '', %s, now()"
            " FROM auditlog_logentry WHERE object_id = %s LIMIT 1",
            [user.pk, account.pk],
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        user.delete()
