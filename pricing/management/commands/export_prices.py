"""Export the database prices in force now (and the aliases) as a sheet import_prices reads.

Environment prices (CREDIT_COST_<ACTION>) are not exported: they live in the
deployment's environment, which takes precedence.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from django.core.management.base import BaseCommand

from pricing.models import UNIT_PRICE_FIELDS
from pricing.selectors import aliases_all, credit_type_get, prices_current

COLUMNS = ["key", "credit_type", *UNIT_PRICE_FIELDS, "unit_name", "is_free", "effective_from", "note"]


class Command(BaseCommand):
    help = "Export the current database price catalogue as JSON (with aliases) or CSV."

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["json", "csv"], default="json")
        parser.add_argument("--output", "-o", type=Path, help="Default: standard output.")
        parser.add_argument("--credit-type", help="Only this credit type.")

    def handle(self, *args, format: str, output: Path | None, credit_type: str | None, **options):
        only = credit_type_get(credit_type) if credit_type else None
        rows = []
        for row in prices_current(only):
            if row.source != "database":
                continue
            rows.append(
                {
                    "key": row.key,
                    "credit_type": row.credit_type.code,
                    **{name: format_decimal(getattr(row, name)) for name in UNIT_PRICE_FIELDS},
                    "unit_name": row.unit_name,
                    "is_free": row.is_free,
                    "note": row.version.note if row.version else "",
                }
            )
        if format == "json":
            aliases = [{"alias": a, "target": t} for a, t in sorted(aliases_all().items())]
            text = json.dumps({"prices": rows, "aliases": aliases}, indent=2) + "\n"
        else:
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({**row, "is_free": "true" if row["is_free"] else "false"})
            text = buffer.getvalue()
        if output:
            output.write_text(text, encoding="utf-8")
            self.stdout.write(f"Exported {len(rows)} price(s) to {output}.")
        else:
            self.stdout.write(text, ending="")


def format_decimal(value) -> str:
    return format(value.normalize(), "f")
