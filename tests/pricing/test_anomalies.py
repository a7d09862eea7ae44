"""Pricing anomalies are open until staff mark them resolved: who and when, with a permission, once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import IntegrityError
from django.utils import timezone

from pricing.exceptions import AnomalyResolvePermissionRequired
from pricing.models import PricingAnomaly
from pricing.services import anomalies_resolve
from tests.factories import PricingAnomalyFactory, UserFactory

pytestmark = pytest.mark.django_db
ANOMALIES = "/admin/pricing/pricinganomaly/"


def resolver(**kwargs):
    """Staff who may view anomalies and mark them resolved."""
    user = UserFactory(**kwargs)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="pricing", codename__in=["view_pricinganomaly", "resolve_pricinganomaly"]
        )
    )
    return user


def viewer():
    """Staff who may view anomalies, nothing more."""
    user = UserFactory()
    user.user_permissions.add(Permission.objects.get(content_type__app_label="pricing", codename="view_pricinganomaly"))
    return user


def test_an_anomaly_is_open_until_resolved():
    anomaly = PricingAnomalyFactory()
    assert (anomaly.resolved_at, anomaly.resolved_by) == (None, None)


def test_resolving_records_who_and_when():
    anomaly, user, at = PricingAnomalyFactory(), resolver(), timezone.now()
    marked = anomalies_resolve(anomalies=PricingAnomaly.objects.filter(pk=anomaly.pk), user=user, now=at)
    anomaly.refresh_from_db()
    assert marked == 1 and (anomaly.resolved_at, anomaly.resolved_by) == (at, user)


def test_resolving_again_keeps_the_first_resolver_and_time():
    anomaly, first, second = PricingAnomalyFactory(), resolver(), resolver()
    anomalies_resolve(anomalies=PricingAnomaly.objects.all(), user=first)
    resolved_at = PricingAnomaly.objects.get().resolved_at
    later = timezone.now() + timedelta(minutes=5)
    assert anomalies_resolve(anomalies=PricingAnomaly.objects.all(), user=second, now=later) == 0
    anomaly.refresh_from_db()
    assert (anomaly.resolved_at, anomaly.resolved_by) == (resolved_at, first)


def test_resolving_needs_the_permission():
    PricingAnomalyFactory()
    with pytest.raises(AnomalyResolvePermissionRequired):
        anomalies_resolve(anomalies=PricingAnomaly.objects.all(), user=viewer())
    assert PricingAnomaly.objects.get().resolved_at is None


def test_the_database_refuses_a_resolution_without_its_resolver():
    with pytest.raises(IntegrityError):
        PricingAnomalyFactory(resolved_at=timezone.now())


def test_mark_resolved_in_the_admin(client):
    open_one, other = PricingAnomalyFactory(), PricingAnomalyFactory()
    user = resolver()
    client.force_login(user)
    response = client.post(ANOMALIES, {"action": "mark_resolved", "_selected_action": [open_one.pk]}, follow=True)
    open_one.refresh_from_db()
    other.refresh_from_db()
    assert open_one.resolved_by == user and open_one.resolved_at is not None and other.resolved_at is None
    assert "Marked 1 pricing anomaly resolved." in [str(m) for m in get_messages(response.wsgi_request)]


def test_the_open_filter_lists_only_unresolved_anomalies(client):
    open_one = PricingAnomalyFactory()
    resolved = PricingAnomalyFactory(resolved_at=timezone.now(), resolved_by=UserFactory())
    client.force_login(viewer())
    page = client.get(ANOMALIES, {"resolved_at__isempty": "1"}).content.decode()
    assert open_one.public_id in page and resolved.public_id not in page


def test_staff_without_the_permission_cannot_mark_resolved(client):
    anomaly = PricingAnomalyFactory()
    client.force_login(viewer())
    page = client.get(ANOMALIES).content.decode()
    assert "mark_resolved" not in page
    client.post(ANOMALIES, {"action": "mark_resolved", "_selected_action": [anomaly.pk]})
    anomaly.refresh_from_db()
    assert anomaly.resolved_at is None
