"""The expiry sweep's task and command: thin, and safe to run twice."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from approvals.models import ApprovalRequest
from approvals.tasks import expire_approvals
from tests.factories import ApprovalRequestFactory

pytestmark = pytest.mark.django_db


def overdue() -> ApprovalRequest:
    return ApprovalRequestFactory(expires_at=timezone.now() - timedelta(minutes=1))


def test_the_task_marks_overdue_requests_expired():
    request, fresh = overdue(), ApprovalRequestFactory()
    assert expire_approvals() == 1
    assert expire_approvals() == 0
    request.refresh_from_db()
    fresh.refresh_from_db()
    assert (request.status, fresh.status) == ("expired", "pending")
    assert request.decided_at is not None and request.decided_by is None


def test_the_command_says_how_many_it_expired():
    overdue(), overdue()
    out = StringIO()
    call_command("expire_approvals", stdout=out)
    assert out.getvalue().strip() == "Expired 2 approval request(s)."


def test_beat_runs_the_sweep():
    assert settings.CELERY_BEAT_SCHEDULE["expire-approvals"]["task"] == "approvals.tasks.expire_approvals"
