"""`Authorization: Bearer <key>` for the REST API."""

import json

from django.http.request import RawPostDataException
from rest_framework import authentication, exceptions

from accounts.services import api_key_authenticate


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <api key>'.")
        api_key = api_key_authenticate(secret.strip(), account_hint=_account_named(request))
        if api_key is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        return (None, api_key)

    def authenticate_header(self, request) -> str:
        return self.keyword


# A JSON body this small is read here as well as by the parser (microseconds);
# anything larger or unusual gets no hint and its account is read on its own.
_HINT_MAX_BODY = 16 * 1024


def _account_named(request) -> str | None:
    """The `account` a JSON POST body names, read early so the key's statement can fetch it too.

    Only a hint for one statement (`api_key_authenticate`): the body is parsed
    and validated by the view as always, and a body that is not a small JSON
    object simply gives none.
    """
    django_request = request._request
    if django_request.method != "POST" or not django_request.content_type.startswith("application/json"):
        return None
    try:
        if not 0 < int(django_request.META.get("CONTENT_LENGTH") or 0) <= _HINT_MAX_BODY:
            return None
        body = json.loads(django_request.body)
    except (ValueError, TypeError, RecursionError, RawPostDataException):
        return None
    account = body.get("account") if isinstance(body, dict) else None
    return account if isinstance(account, str) else None
