"""/api/schema/: text a browser shows, the same YAML for API clients."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


def test_a_browser_is_shown_the_schema_as_text_not_a_download(client):
    response = client.get("/api/schema/", HTTP_ACCEPT=BROWSER_ACCEPT)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert "Content-Disposition" not in response or "attachment" not in response["Content-Disposition"]
    assert response.content.startswith(b"openapi:")


def test_api_clients_and_the_json_format_are_answered_as_before(client):
    assert client.get("/api/schema/")["Content-Type"].startswith("application/vnd.oai.openapi")
    as_json = client.get("/api/schema/?format=json", HTTP_ACCEPT=BROWSER_ACCEPT)
    assert as_json["Content-Type"].startswith("application/vnd.oai.openapi+json")
    assert as_json.json()["openapi"].startswith("3.")


def test_the_docs_pages_name_no_other_host(client):
    for url in ("/api/docs/", "/api/redoc/"):
        body = client.get(url).content.decode()
        assert "http://" not in body.replace("http://www.w3.org", "") and "https://" not in body, url
