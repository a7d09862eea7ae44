"""Every audited model's admin page leads to its trail: the History page lists who changed what."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from audit.admin import AuditHistoryMixin
from audit.registry import AUDITED
from tests.audit.test_registry import CHANGES
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", [item.model for item in AUDITED], ids=lambda m: m._meta.label)
def test_the_history_page_of_every_audited_object_shows_its_trail(client, model):
    client.force_login(UserFactory(is_superuser=True))
    obj, fields = CHANGES[model]()
    opts = model._meta

    assert isinstance(admin.site.get_model_admin(model), AuditHistoryMixin)
    change_page = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
    history_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_history", args=[obj.pk])
    assert change_page.status_code == 200 and history_url in change_page.content.decode()

    history = client.get(history_url)

    assert history.status_code == 200
    entries = [entry for entry, _ in history.context["audit_entries"]]
    assert entries and set(entries[0].changes) == fields
    assert 'id="audit-trail"' in history.content.decode()
