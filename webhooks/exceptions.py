"""Domain errors of the webhooks app (rendered by config.errors.api_exception_handler)."""

from __future__ import annotations

from config.errors import DomainError, NotFound


class WebhookEndpointNotFound(NotFound):
    code = "webhook_endpoint_not_found"
    message = "No such webhook endpoint."


class WebhookUrlRefused(DomainError):
    """The URL is not https, or resolves to an address a webhook may not reach (SSRF)."""

    code = "webhook_url_refused"
    status = 422  # well-formed, but not a place a webhook may be sent


class UnknownEventType(DomainError):
    code = "unknown_event_type"
    status = 400
