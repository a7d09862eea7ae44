"""Import a price sheet (CSV or JSON), all-or-nothing.

Every row is validated exactly as the admin validates a price, sanity bounds
included; one bad row and nothing is written. Rows equal to the price in
force are skipped, so importing the same sheet twice changes nothing. See
docs/pricing.md (import and export) for the formats.
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from pricing.services import prices_import

CSV_COLUMNS = {
    "key",
    "credit_type",
    "per_request",
    "per_1k_input_tokens",
    "per_1k_output_tokens",
    "per_unit",
    "unit_name",
    "is_free",
    "effective_from",
    "note",
}


def read_sheet(path: Path, fmt: str) -> tuple[list[dict], list[dict]]:
    text = path.read_text(encoding="utf-8-sig")
    if fmt == "json":
        try:
            # Numbers become Decimal, never float: 0.1 stays 0.1.
            data = json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path}: not valid JSON ({exc}).") from exc
        if isinstance(data, list):
            data = {"prices": data}
        if not isinstance(data, dict) or not isinstance(data.get("prices", []), list):
            raise CommandError(f'{path}: expected {{"prices": [...], "aliases": [...]}}.')
        prices, aliases = data.get("prices", []), data.get("aliases", [])
        if not all(isinstance(r, dict) for r in [*prices, *aliases]):
            raise CommandError(f"{path}: every price and alias must be an object.")
        return prices, aliases
    reader = csv.DictReader(text.splitlines())
    unknown = set(reader.fieldnames or []) - CSV_COLUMNS
    if "key" not in (reader.fieldnames or []) or unknown:
        raise CommandError(
            f"{path}: CSV needs a header with `key` and only {sorted(CSV_COLUMNS)} (unknown: {sorted(unknown)})."
        )
    return [{k: v for k, v in row.items() if v not in (None, "")} for row in reader], []


class Command(BaseCommand):
    help = "Import a CSV or JSON price sheet: all rows or none, validated against the sanity bounds."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--format", choices=["csv", "json"], help="Default: from the file extension.")
        parser.add_argument("--dry-run", action="store_true", help="Validate and report; write nothing.")

    def handle(self, *args, file: Path, format: str | None, dry_run: bool, **options):
        if not file.exists():
            raise CommandError(f"{file}: no such file.")
        fmt = format or ("json" if file.suffix.lower() == ".json" else "csv")
        prices, aliases = read_sheet(file, fmt)
        try:
            report = prices_import(prices=prices, aliases=aliases, dry_run=dry_run)
        except ValidationError as exc:
            for message in exc.messages:
                self.stderr.write(message)
            raise CommandError(f"{len(exc.messages)} invalid row(s); nothing was imported.") from exc
        prefix = "[dry run] would create" if dry_run else "created"
        for price in report.created:
            self.stdout.write(f"{prefix} {price.key} v{price.version} ({price.credit_type.code})")
        self.stdout.write(
            f"{prefix} {len(report.created)} price version(s); {len(report.unchanged)} unchanged; "
            f"{len(report.aliases)} alias(es) set" + (" (rolled back)." if dry_run else ".")
        )
