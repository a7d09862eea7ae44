"""The client package itself: one runtime dependency, and a method for every API endpoint."""

from __future__ import annotations

import re
import tomllib

from django.urls import URLPattern, URLResolver, get_resolver

from tests.sdk.conftest import SDK


def test_the_package_has_exactly_one_runtime_dependency_httpx():
    project = tomllib.loads((SDK / "pyproject.toml").read_text())["project"]
    assert project["name"] == "creditledger"
    [dependency] = project["dependencies"]
    assert re.match(r"httpx\b", dependency)


def _api_routes() -> set[tuple[str, str]]:
    """(METHOD, path with {} for each parameter) for every /api/v1/ view."""
    routes: set[tuple[str, str]] = set()

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                path = prefix + str(pattern.pattern)
                view = getattr(pattern.callback, "view_class", None)
                if not path.startswith("api/v1/") or view is None:
                    continue
                for method in ("get", "post", "put", "patch", "delete"):
                    if hasattr(view, method):
                        routes.add((method.upper(), "/" + re.sub(r"<[^>]+>", "{}", path[len("api/v1/") :])))

    walk(get_resolver().url_patterns, "")
    return routes


def _client_routes() -> set[tuple[str, str]]:
    source = (SDK / "creditledger" / "resources.py").read_text()
    found = re.findall(r'Request\(\s*"(GET|POST|PUT|PATCH|DELETE)",\s*f?"([^"]+)"', source)
    return {(method, re.sub(r"\{[^}]+\}", "{}", path)) for method, path in found}


def test_every_api_endpoint_has_a_client_method():
    api = _api_routes()
    assert len(api) >= 17
    assert api - _client_routes() == set()
    assert _client_routes() - api == set()
