"""Where a webhook may be sent: https, to public addresses only (no SSRF into our own network).

Checked when an endpoint is created or its URL changed, and again before
every delivery (DNS can change after creation). Every address the host
resolves to must be global: loopback, private, link-local (the cloud
metadata service, 169.254.169.254), shared, reserved, multicast and
unspecified addresses are refused, as are IPv4 addresses mapped into IPv6.
With CREDITLEDGER_WEBHOOK_ALLOW_PRIVATE=true (local development and the
tests) any address and plain http are allowed.

The check resolves the name, then the HTTP client resolves it again to
connect: a name that changes in between (DNS rebinding) is not caught by
this check alone; run the workers behind an egress policy for that.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

from webhooks.exceptions import WebhookUrlRefused


def _address_allowed(text: str) -> bool:
    ip = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def url_check(url: str, *, allow_private: bool | None = None) -> None:
    """Raise WebhookUrlRefused unless a webhook may be POSTed to `url` now."""
    if allow_private is None:
        allow_private = settings.CREDITLEDGER_WEBHOOK_ALLOW_PRIVATE
    if not url.isprintable() or " " in url:
        raise WebhookUrlRefused("The URL may not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookUrlRefused("The URL is not valid.") from exc
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise WebhookUrlRefused("A webhook URL must use https.")
    if not parts.hostname:
        raise WebhookUrlRefused("The URL has no host.")
    if parts.username or parts.password:
        raise WebhookUrlRefused("A webhook URL may not carry credentials.")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, port or 443, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise WebhookUrlRefused(f"The host {parts.hostname!r} does not resolve.") from exc
    for info in infos:
        if not _address_allowed(info[4][0]):
            raise WebhookUrlRefused(
                f"The host {parts.hostname!r} resolves to {info[4][0]}, a loopback, private, link-local or "
                "otherwise non-public address."
            )
