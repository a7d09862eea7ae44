"""Subscription errors: each has a stable code and HTTP status (rendered by config.errors)."""

from config.errors import DomainError


class SubscriptionConflict(DomainError):
    code = "subscription_conflict"
    status = 409
    message = "The account already has a live subscription."
