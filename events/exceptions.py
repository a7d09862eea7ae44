"""Domain errors of the events app (rendered by config.errors.api_exception_handler)."""

from __future__ import annotations

from config.errors import NotFound


class EventNotFound(NotFound):
    code = "event_not_found"
    message = "No such event."
