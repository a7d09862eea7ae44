"""Who made a change: the staff user of the request, on every audit row written while it runs.

auditlog's middleware puts the request's user (and address) in a context
that every `LogEntry` saved during the request picks up, so a change made by
a service the admin calls (a key revoked by an admin action, a price version
created by the price form) is attributed to the staff user who asked for it.

Only requests that carry a session cookie, that is the console's: API
clients authenticate with keys and never have a session, and their requests
are left exactly as they were (auditlog connects and disconnects a signal
receiver per request it handles). A change with no staff user behind it (API,
Celery, a command) is recorded with no actor, shown as "system".
"""

from __future__ import annotations

from auditlog.middleware import AuditlogMiddleware
from django.conf import settings


class StaffAuditMiddleware(AuditlogMiddleware):
    def __call__(self, request):
        if settings.SESSION_COOKIE_NAME not in request.COOKIES:
            return self.get_response(request)
        return super().__call__(request)
