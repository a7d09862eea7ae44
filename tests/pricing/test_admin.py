"""The pricing admin: editing a price adds a version; bounds apply to the form."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from pricing.models import ModelAlias, Price
from tests.factories import PriceFactory, default_credit_type

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


def price_form(**overrides) -> dict:
    data = {
        "key": "openai/gpt-4o",
        "credit_type": default_credit_type().pk,
        "effective_from_0": "",
        "effective_from_1": "",
        "per_request": "0",
        "per_1k_input_tokens": "2.5",
        "per_1k_output_tokens": "10",
        "per_unit": "0",
        "unit_name": "",
        "note": "",
    }
    data.update(overrides)
    return data


def test_editing_a_price_creates_a_new_version(admin_client):
    first = PriceFactory(key="openai/gpt-4o")
    data = price_form(per_1k_input_tokens="3", note="provider price rise")
    data["effective_from_0"] = first.effective_from.strftime("%Y-%m-%d")
    data["effective_from_1"] = first.effective_from.strftime("%H:%M:%S")
    response = admin_client.post(f"/admin/pricing/price/{first.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    versions = list(Price.objects.filter(key="openai/gpt-4o").order_by("version"))
    assert [v.version for v in versions] == [1, 2]
    assert versions[0].per_1k_input_tokens == Decimal("2.5") and versions[1].per_1k_input_tokens == Decimal("3")
    assert versions[1].created_by.username == "root" and versions[1].note == "provider price rise"
    assert response["Location"].endswith(f"/admin/pricing/price/{versions[1].pk}/change/")


def test_an_out_of_bounds_price_cannot_be_saved_in_the_admin(admin_client):
    data = price_form(per_1k_input_tokens="2500")
    data["effective_from_0"], data["effective_from_1"] = "2099-01-01", "00:00:00"
    response = admin_client.post("/admin/pricing/price/add/", data)
    assert response.status_code == 200
    assert "sanity bounds" in str(response.context["adminform"].form.errors)
    assert not Price.objects.exists()


def test_the_change_list_shows_sources_and_environment_prices(admin_client, settings):
    PriceFactory(key="openai/gpt-4o")
    settings.CREDIT_COSTS = {"AUDIO_UPLOAD": Decimal("2")}
    response = admin_client.get("/admin/pricing/price/")
    assert response.status_code == 200
    content = response.content.decode()
    assert "CREDIT_COST_AUDIO_UPLOAD" in content and "audio.upload" in content and "in force" in content


def test_the_change_page_shows_the_version_history(admin_client):
    from pricing.services import price_create

    PriceFactory(key="openai/gpt-4o")
    second = price_create(key="openai/gpt-4o", credit_type=default_credit_type(), per_1k_input_tokens="3")
    response = admin_client.get(f"/admin/pricing/price/{second.pk}/change/")
    assert response.status_code == 200 and "v1" in response.content.decode() and "v2" in response.content.decode()


def test_an_alias_cycle_cannot_be_saved_in_the_admin(admin_client):
    PriceFactory(key="vendor/a")
    ModelAlias.objects.create(alias="b", target="vendor/a")
    ModelAlias.objects.create(alias="c", target="b")
    response = admin_client.post("/admin/pricing/modelalias/add/", {"alias": "d", "target": "d"})
    assert response.status_code == 200
    b = ModelAlias.objects.get(alias="b")
    response = admin_client.post(f"/admin/pricing/modelalias/{b.pk}/change/", {"target": "c", "note": ""})
    assert response.status_code == 200 and "cycle" in str(response.context["adminform"].form.errors)
    assert ModelAlias.objects.get(alias="b").target == "vendor/a"


def test_the_price_form_shows_zero_and_prices_at_their_scale_not_nine_decimals(admin_client):
    price = PriceFactory(key="openai/gpt-4o-mini", per_request=Decimal("0"), per_1k_input_tokens=Decimal("0.25"))
    page = admin_client.get(f"/admin/pricing/price/{price.pk}/change/").content.decode()
    assert "0E-9" not in page and ".000000000" not in page
    assert 'name="per_request" value="0.00"' in page and 'name="per_1k_input_tokens" value="0.25"' in page
