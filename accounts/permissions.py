from rest_framework.permissions import BasePermission

from config.errors import ErrorCode


class HasApiKey(BasePermission):
    """Any live API key."""

    api_errors = ()  # without a key DRF answers 401 (not_authenticated), never 403

    def has_permission(self, request, view) -> bool:
        return request.auth is not None


class IsServiceKey(BasePermission):
    """Only a service key (acts on any account)."""

    message = "This operation needs a service API key."
    api_errors = (ErrorCode(403, "permission_denied"),)

    def has_permission(self, request, view) -> bool:
        return request.auth is not None and request.auth.is_service
