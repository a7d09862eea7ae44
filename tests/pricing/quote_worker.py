"""A second worker process for the cache test: quotes a key each time it reads a line.

Run as `python -m tests.pricing.quote_worker KEY` with DATABASE_URL pointing at
the test database. Prints one JSON line per quote: amount, price version and
how many times this process has loaded the catalogue.
"""

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")

import django

django.setup()

from pricing.selectors import catalogue_cache_reloads  # noqa: E402
from pricing.services import Usage, price_quote  # noqa: E402


def main(key: str) -> None:
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if line.strip() == "exit":
            break
        quote = price_quote(key=key, usage=Usage(input_tokens=1000))
        print(
            json.dumps(
                {
                    "amount": format(quote.amount, "f"),
                    "version": quote.price_version.version,
                    "reloads": catalogue_cache_reloads(),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1])
