from rest_framework.permissions import BasePermission


class HasApiKey(BasePermission):
    """Any live API key."""

    def has_permission(self, request, view) -> bool:
        return request.auth is not None


class IsServiceKey(BasePermission):
    """Only a service key (acts on any account)."""

    message = "This operation needs a service API key."

    def has_permission(self, request, view) -> bool:
        return request.auth is not None and request.auth.is_service
