"""The API test client: every POST carries a fresh Idempotency-Key unless the test gives its own.

Money-moving POSTs require the header (400 idempotency_key_required). A test
that checks a specific key passes `HTTP_IDEMPOTENCY_KEY=...`; one that checks
the refusal passes `idempotency_key=None`.
"""

from __future__ import annotations

import uuid

from rest_framework.test import APIClient

_UNSET = object()


class KeyedAPIClient(APIClient):
    def post(self, path, data=None, format=None, content_type=None, follow=False, idempotency_key=_UNSET, **extra):
        if "HTTP_IDEMPOTENCY_KEY" not in extra and idempotency_key is not None:
            extra["HTTP_IDEMPOTENCY_KEY"] = str(uuid.uuid4()) if idempotency_key is _UNSET else idempotency_key
        return super().post(path, data=data, format=format, content_type=content_type, follow=follow, **extra)
