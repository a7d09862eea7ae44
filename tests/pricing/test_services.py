from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, InternalError, transaction
from django.utils import timezone

from billing.models import LedgerEntry
from billing.services import Actor, charge_create
from pricing.exceptions import InvalidPriceKey, InvalidUsage, PriceNotConfigured, PricingAnomaly
from pricing.models import ModelAlias, Price
from pricing.services import Usage, alias_set, price_create, price_quote
from tests.factories import CreditTypeFactory, PriceFactory, alias_for, default_credit_type, funded_account

pytestmark = pytest.mark.django_db

TOKENS = Usage(input_tokens=1000, output_tokens=500)


# --- pricing a usage -------------------------------------------------------------------


def test_quote_prices_tokens_per_thousand_and_names_the_version():
    price = PriceFactory(key="openai/gpt-4o", per_1k_input_tokens=Decimal("2.5"), per_1k_output_tokens=Decimal("10"))
    quote = price_quote(key="openai/gpt-4o", usage=TOKENS)
    assert quote.amount == Decimal("7.50")
    assert quote.price_version == price and quote.source == "database" and quote.resolved_key == "openai/gpt-4o"
    assert not quote.is_free and quote.anomaly == ""


def test_quote_adds_request_and_unit_prices():
    PriceFactory(
        key="image.generate",
        per_1k_input_tokens=0,
        per_1k_output_tokens=0,
        per_request=Decimal("1"),
        per_unit=Decimal("0.25"),
        unit_name="image",
    )
    assert price_quote(key="image.generate", usage=Usage(requests=2, units=3)).amount == Decimal("2.75")


def test_keys_are_normalised_before_pricing():
    PriceFactory(key="openai/gpt-4o")
    assert price_quote(key="  OpenAI/GPT-4o ", usage=TOKENS).resolved_key == "openai/gpt-4o"


def test_a_malformed_key_is_a_client_error():
    with pytest.raises(InvalidPriceKey):
        price_quote(key="no spaces allowed", usage=TOKENS)


def test_amount_uses_the_credit_type_scale_and_rounds_half_up():
    fine = CreditTypeFactory(code="usd6", scale=6)
    PriceFactory(key="m", credit_type=fine, per_1k_input_tokens=Decimal("0.0015"), per_1k_output_tokens=0)
    # 333 tokens x 0.0015 / 1000 = 0.0004995 -> 0.000500 (half up at 6 places)
    assert price_quote(key="m", usage=Usage(input_tokens=333), credit_type=fine).amount == Decimal("0.000500")


def test_a_tiny_non_zero_usage_costs_one_quantum_not_zero():
    PriceFactory(key="cheap/model", per_1k_input_tokens=Decimal("0.001"), per_1k_output_tokens=0)
    assert price_quote(key="cheap/model", usage=Usage(input_tokens=1)).amount == Decimal("0.01")


# --- missing prices ----------------------------------------------------------------------


def test_missing_price_for_a_high_value_model_is_refused(no_env_prices, settings):
    settings.PRICING_DEFAULT_PRICE = {"per_request": Decimal("0.01")}
    with pytest.raises(PriceNotConfigured) as caught:
        price_quote(key="openai/gpt-4-turbo", usage=TOKENS)
    assert caught.value.status == 422 and caught.value.code == "price_not_configured"


def test_missing_price_without_an_operator_default_is_refused(no_env_prices):
    with pytest.raises(PriceNotConfigured):
        price_quote(key="some/obscure-model", usage=TOKENS)


def test_operator_default_price_applies_only_to_low_value_keys(no_env_prices, settings):
    settings.PRICING_DEFAULT_PRICE = {
        "per_request": Decimal("0"),
        "per_1k_input_tokens": Decimal("1"),
        "per_1k_output_tokens": Decimal("1"),
    }
    quote = price_quote(key="some/obscure-model", usage=TOKENS)
    assert quote.source == "default" and quote.amount == Decimal("1.50") and "default_price" in quote.notices
    for key in ["anthropic/claude-3-opus", "google/gemini-1.5-pro", "openai/o3-mini", "x/claude-sonnet:free"]:
        with pytest.raises(PriceNotConfigured):
            price_quote(key=key, usage=TOKENS)


def test_a_price_in_another_credit_type_does_not_count():
    PriceFactory(key="openai/gpt-4o")
    other = CreditTypeFactory(code="usd", scale=6)
    with pytest.raises(PriceNotConfigured):
        price_quote(key="openai/gpt-4o", usage=TOKENS, credit_type=other)


# --- aliases -------------------------------------------------------------------------------


def test_alias_resolves_to_the_canonical_price():
    price = PriceFactory(key="openai/gpt-4o-2024-08-06")
    alias_for("gpt-4o", "openai/gpt-4o-2024-08-06")
    quote = price_quote(key="gpt-4o", usage=TOKENS)
    assert quote.key == "gpt-4o" and quote.resolved_key == "openai/gpt-4o-2024-08-06"
    assert quote.price_version == price


def test_alias_chains_resolve():
    PriceFactory(key="vendor/model-v2")
    alias_for("model-latest", "vendor/model-v2")
    alias_for("model", "model-latest")
    assert price_quote(key="model", usage=TOKENS).resolved_key == "vendor/model-v2"


def test_alias_cycle_cannot_be_saved():
    PriceFactory(key="vendor/a")
    alias_for("b", "vendor/a")
    alias_for("c", "b")
    with pytest.raises(ValidationError, match="cycle"):
        alias_set(alias="b", target="c")
    assert ModelAlias.objects.get(alias="b").target == "vendor/a"


def test_alias_to_nothing_cannot_be_saved():
    with pytest.raises(ValidationError, match="no price"):
        alias_set(alias="gpt-9", target="openai/gpt-9")
    assert not ModelAlias.objects.exists()


def test_alias_cannot_hide_a_priced_key():
    PriceFactory(key="vendor/a")
    PriceFactory(key="vendor/b")
    with pytest.raises(ValidationError, match="prices of its own"):
        alias_set(alias="vendor/a", target="vendor/b")


# --- free keys ------------------------------------------------------------------------------


def test_free_suffix_on_a_paid_model_is_charged_at_the_base_price(caplog):
    base = PriceFactory(key="anthropic/claude-3-opus", per_1k_input_tokens=Decimal("15"), per_1k_output_tokens=75)
    quote = price_quote(key="anthropic/claude-3-opus:free", usage=TOKENS)
    assert quote.amount == Decimal("52.50") and not quote.is_free
    assert quote.price_version == base and quote.resolved_key == "anthropic/claude-3-opus"
    assert quote.notices == ("free_suffix_stripped",)
    assert "not free in the catalogue" in caplog.text


def test_a_key_the_catalogue_marks_free_is_free():
    PriceFactory(key="meta-llama/llama-3-8b")
    PriceFactory(key="meta-llama/llama-3-8b:free", is_free=True, per_1k_input_tokens=0, per_1k_output_tokens=0)
    quote = price_quote(key="meta-llama/llama-3-8b:free", usage=TOKENS)
    assert quote.is_free and quote.amount == Decimal("0.00") and quote.anomaly == ""


def test_zero_prices_cannot_be_saved_without_saying_free():
    with pytest.raises(ValidationError, match="must be marked free"):
        price_create(key="x/model", credit_type=default_credit_type())


def test_a_free_price_has_no_unit_prices():
    with pytest.raises(ValidationError, match="free price"):
        price_create(key="x/model", credit_type=default_credit_type(), is_free=True, per_request="1")


# --- sanity bounds ----------------------------------------------------------------------------


def test_a_1000x_price_is_refused_at_save():
    with pytest.raises(ValidationError, match="sanity bounds"):
        PriceFactory(key="openai/gpt-4o", per_1k_input_tokens=Decimal("2500"))
    assert not Price.objects.exists()


def test_a_1000x_price_is_refused_at_quote_and_reported(sentry_events):
    # A version saved before the bounds were tightened (or written around the
    # service): the quote itself refuses it.
    Price.objects.bulk_create(
        [Price(key="openai/gpt-4o", credit_type=default_credit_type(), version=1, per_1k_input_tokens=2500)]
    )
    with pytest.raises(PricingAnomaly) as caught:
        price_quote(key="openai/gpt-4o", usage=TOKENS)
    assert caught.value.status == 422 and caught.value.code == "pricing_anomaly"
    assert any(e.get("tags", {}).get("pricing_anomaly") == "pricing_anomaly" for e in sentry_events)


def test_bounds_are_configurable(settings):
    settings.PRICING_BOUNDS = {**settings.PRICING_BOUNDS, "per_request": (Decimal("0.5"), Decimal("5"))}
    with pytest.raises(ValidationError):
        price_create(key="action.x", credit_type=default_credit_type(), per_request="6")
    with pytest.raises(ValidationError):
        price_create(key="action.x", credit_type=default_credit_type(), per_request="0.1")
    assert price_create(key="action.x", credit_type=default_credit_type(), per_request="5").version == 1


def test_a_quote_above_the_ceiling_is_refused(settings):
    settings.PRICING_MAX_QUOTE = Decimal("100")
    PriceFactory(key="big/model", per_1k_input_tokens=Decimal("10"))
    with pytest.raises(PricingAnomaly):
        price_quote(key="big/model", usage=Usage(input_tokens=20_000))


# --- zero-cost quotes -----------------------------------------------------------------------------


def test_zero_usage_of_a_paid_key_is_flagged():
    PriceFactory(key="openai/gpt-4o")
    quote = price_quote(key="openai/gpt-4o", usage=Usage())
    assert quote.amount == 0 and quote.anomaly == "zero_cost"


def test_usage_in_an_unpriced_dimension_is_flagged():
    PriceFactory(key="openai/gpt-4o")
    assert price_quote(key="openai/gpt-4o", usage=Usage(units=3)).anomaly == "zero_cost"


# --- usage validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "usage", [{"input_tokens": -1}, {"units": 1.5}, {"requests": True}, {"output_tokens": "10"}, {"units": 10**12}]
)
def test_bad_usage_is_refused(usage):
    with pytest.raises(InvalidUsage):
        Usage(**usage)


# --- environment prices ----------------------------------------------------------------------------


def test_env_fixed_cost_prices_the_action_under_both_spellings(settings):
    settings.CREDIT_COSTS = {"AUDIO_UPLOAD": Decimal("2")}
    for key in ["audio.upload", "audio_upload", "AUDIO_UPLOAD"]:
        quote = price_quote(key=key, usage=Usage(requests=1))
        assert quote.amount == Decimal("2.00") and quote.source == "environment" and quote.price_version is None
        assert quote.resolved_key == key.lower() and quote.price_ref == "env:CREDIT_COST_AUDIO_UPLOAD"


def test_env_price_takes_precedence_over_the_database(settings):
    PriceFactory(key="audio.upload", per_request=Decimal("5"), per_1k_input_tokens=0, per_1k_output_tokens=0)
    settings.CREDIT_COSTS = {"AUDIO_UPLOAD": Decimal("2")}
    assert price_quote(key="audio.upload", usage=Usage(requests=1)).amount == Decimal("2.00")


def test_a_database_price_for_an_env_priced_key_is_refused(settings):
    settings.CREDIT_COSTS = {"AUDIO_UPLOAD": Decimal("2")}
    with pytest.raises(ValidationError, match="CREDIT_COST_AUDIO_UPLOAD"):
        price_create(key="audio.upload", credit_type=default_credit_type(), per_request="3")


def test_env_prices_apply_to_the_default_credit_type_only(settings):
    settings.CREDIT_COSTS = {"AUDIO_UPLOAD": Decimal("2")}
    other = CreditTypeFactory(code="usd", scale=6)
    with pytest.raises(PriceNotConfigured):
        price_quote(key="audio.upload", usage=Usage(requests=1), credit_type=other)


def test_an_out_of_bounds_env_price_is_refused_at_quote(settings):
    settings.CREDIT_COSTS = {"AUDIO_UPLOAD": Decimal("5000")}
    with pytest.raises(PricingAnomaly):
        price_quote(key="audio.upload", usage=Usage(requests=1))


# --- versions ------------------------------------------------------------------------------------------


def test_changing_a_price_adds_a_version_and_keeps_the_old_one():
    first = PriceFactory(key="openai/gpt-4o")
    second = price_create(key="openai/gpt-4o", credit_type=default_credit_type(), per_1k_input_tokens="5")
    assert (first.version, second.version) == (1, 2)
    assert price_quote(key="openai/gpt-4o", usage=TOKENS).price_version == second
    assert Price.objects.filter(key="openai/gpt-4o").count() == 2


def test_a_scheduled_version_applies_from_its_effective_time():
    current = PriceFactory(key="openai/gpt-4o")
    price_create(
        key="openai/gpt-4o",
        credit_type=default_credit_type(),
        per_1k_input_tokens="5",
        effective_from=timezone.now() + timedelta(hours=1),
    )
    assert price_quote(key="openai/gpt-4o", usage=TOKENS).price_version == current


def test_a_version_cannot_be_backdated():
    with pytest.raises(ValidationError, match="past"):
        PriceFactory(key="x/y", effective_from=timezone.now() - timedelta(days=1))


def test_the_database_refuses_to_change_a_price_version():
    price = PriceFactory(key="openai/gpt-4o")
    with pytest.raises((IntegrityError, InternalError)), transaction.atomic():
        Price.objects.filter(pk=price.pk).update(per_1k_input_tokens=1)
    with pytest.raises((IntegrityError, InternalError)), transaction.atomic():
        Price.objects.filter(pk=price.pk).delete()


def test_the_database_refuses_a_paid_price_with_no_unit_price():
    with pytest.raises(IntegrityError), transaction.atomic():
        Price.objects.bulk_create([Price(key="x/y", credit_type=default_credit_type(), version=1)])


# --- charging a quote ----------------------------------------------------------------------------------


def test_a_charge_from_a_quote_records_key_version_and_usage():
    account = funded_account("100.00")
    price = PriceFactory(key="openai/gpt-4o-2024-08-06")
    alias_for("gpt-4o", "openai/gpt-4o-2024-08-06")
    quote = price_quote(key="gpt-4o", usage=TOKENS)
    entry = charge_create(account=account, credit_type=quote.credit_type, quote=quote, actor=Actor.system())
    entry = LedgerEntry.objects.get(pk=entry.pk)
    assert entry.amount == Decimal("-7.50")
    assert (entry.price_key, entry.resolved_key, entry.price_version) == ("gpt-4o", "openai/gpt-4o-2024-08-06", price)
    assert entry.price_source == "database"
    assert entry.usage == {"input_tokens": 1000, "output_tokens": 500, "units": 0, "requests": 0}
    assert entry.unit_prices["per_1k_input_tokens"] == "2.5"


def test_an_out_of_bounds_env_price_fails_the_system_check(settings):
    from pricing.checks import environment_prices_within_bounds

    settings.CREDIT_COSTS = {"AUDIO_UPLOAD": Decimal("5000"), "EXPORT_PREMIUM": Decimal("3")}
    errors = environment_prices_within_bounds(None)
    assert [e.id for e in errors] == ["pricing.E001"] and "CREDIT_COST_AUDIO_UPLOAD" in errors[0].msg
