"""manage.py import_prices and export_prices."""

from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from pricing.models import ModelAlias, Price
from pricing.services import Usage, price_quote
from tests.factories import PriceFactory

pytestmark = pytest.mark.django_db

CSV_SHEET = """key,credit_type,per_request,per_1k_input_tokens,per_1k_output_tokens,per_unit,unit_name,is_free
openai/gpt-4o,credits,,2.5,10,,,false
image.generate,credits,1,,,0.25,image,false
meta-llama/llama-3-8b:free,credits,,,,,,true
"""


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_import_csv_creates_a_version_per_row(tmp_path):
    sheet = tmp_path / "prices.csv"
    sheet.write_text(CSV_SHEET)
    output = run("import_prices", str(sheet))
    assert "created 3 price version(s)" in output
    assert price_quote(key="openai/gpt-4o", usage=Usage(input_tokens=1000)).amount == Decimal("2.50")
    assert price_quote(key="meta-llama/llama-3-8b:free", usage=Usage(input_tokens=1000)).is_free


def test_importing_the_same_sheet_twice_changes_nothing(tmp_path):
    sheet = tmp_path / "prices.csv"
    sheet.write_text(CSV_SHEET)
    run("import_prices", str(sheet))
    assert "created 0 price version(s); 3 unchanged" in run("import_prices", str(sheet))
    assert Price.objects.count() == 3


def test_import_json_with_aliases(tmp_path):
    sheet = tmp_path / "prices.json"
    sheet.write_text(
        json.dumps(
            {
                "prices": [
                    {"key": "openai/gpt-4o-2024-08-06", "per_1k_input_tokens": "2.5", "per_1k_output_tokens": 10}
                ],
                "aliases": [{"alias": "gpt-4o", "target": "openai/gpt-4o-2024-08-06"}],
            }
        )
    )
    run("import_prices", str(sheet))
    assert price_quote(key="gpt-4o", usage=Usage(output_tokens=1000)).amount == Decimal("10.00")


def test_import_is_all_or_nothing_and_names_the_bad_row(tmp_path):
    sheet = tmp_path / "prices.csv"
    sheet.write_text(CSV_SHEET + "openai/gpt-4-turbo,credits,,10000,30,,,false\n")  # a 1000x typo
    err = StringIO()
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_prices", str(sheet), stdout=StringIO(), stderr=err)
    assert "price row 4 (openai/gpt-4-turbo)" in err.getvalue() and "sanity bounds" in err.getvalue()
    assert not Price.objects.exists()


def test_an_alias_cycle_in_a_sheet_imports_nothing(tmp_path):
    sheet = tmp_path / "prices.json"
    sheet.write_text(
        json.dumps(
            {
                "prices": [{"key": "vendor/a", "per_request": "1"}],
                "aliases": [
                    {"alias": "b", "target": "vendor/a"},
                    {"alias": "c", "target": "b"},
                    {"alias": "b", "target": "c"},
                ],
            }
        )
    )
    with pytest.raises(CommandError):
        call_command("import_prices", str(sheet), stdout=StringIO(), stderr=StringIO())
    assert not Price.objects.exists() and not ModelAlias.objects.exists()


def test_dry_run_validates_and_writes_nothing(tmp_path):
    sheet = tmp_path / "prices.csv"
    sheet.write_text(CSV_SHEET)
    output = run("import_prices", str(sheet), "--dry-run")
    assert "[dry run] would create 3 price version(s)" in output
    assert not Price.objects.exists()


def test_float_prices_in_json_keep_their_decimal_value(tmp_path):
    sheet = tmp_path / "prices.json"
    sheet.write_text('{"prices": [{"key": "vendor/m", "per_1k_input_tokens": 0.1}]}')
    run("import_prices", str(sheet))
    assert Price.objects.get(key="vendor/m").per_1k_input_tokens == Decimal("0.1")


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_export_round_trips_through_import(tmp_path, fmt):
    PriceFactory(key="openai/gpt-4o")
    PriceFactory(
        key="image.generate", per_1k_input_tokens=0, per_1k_output_tokens=0, per_unit="0.25", unit_name="image"
    )
    target = tmp_path / f"out.{fmt}"
    run("export_prices", "--format", fmt, "--output", str(target))
    assert "created 0 price version(s); 2 unchanged" in run("import_prices", str(target))
