"""Links read from Microsoft's answers are followed only back into Microsoft: the bearer token never leaves."""

from __future__ import annotations

import json

import pytest

from licensing.microsoft.errors import MicrosoftError
from licensing.microsoft.graph import Graph
from licensing.microsoft.resources import ExportManifest

BASE = "https://graph.example.test"


class FakeResponse:
    status_code = 200

    def __init__(self, body: dict):
        self.content = json.dumps(body).encode()
        self._body = body

    def json(self):
        return self._body


class RecordingHttp:
    """Answers each GET with the next page and remembers where every request (and token) went."""

    def __init__(self, pages: list[dict]):
        self.pages = list(pages)
        self.urls: list[str] = []

    def request(self, method, url, *, token, **kwargs):
        self.urls.append(url)
        return FakeResponse(self.pages.pop(0))


class Tokens:
    def app_token(self, *, tenant_id, scope):
        return "secret-token"


def graph(http) -> Graph:
    return Graph(http=http, base_url=BASE, tokens=Tokens(), partner_tenant_id="partner")


def test_a_next_link_inside_graph_is_followed():
    http = RecordingHttp([
        {"value": [{"id": "1"}], "@odata.nextLink": f"{BASE}/v1.0/users?$skiptoken=abc"},
        {"value": [{"id": "2"}]},
    ])
    pages = list(graph(http).iter_user_pages(tenant_id="t"))
    assert [len(p) for p in pages] == [1, 1]
    assert http.urls[1] == f"{BASE}/v1.0/users?$skiptoken=abc"


@pytest.mark.parametrize("link", [
    "https://attacker.example/v1.0/users?$skiptoken=abc",
    "https://graph.example.test.attacker.example/v1.0/users",
    "http://169.254.169.254/latest/meta-data/",
])
def test_a_next_link_elsewhere_is_refused_before_any_request(link):
    http = RecordingHttp([{"value": [{"id": "1"}], "@odata.nextLink": link}])
    with pytest.raises(MicrosoftError) as refused:
        list(graph(http).iter_user_pages(tenant_id="t"))
    assert refused.value.code == "unexpected_link"
    assert http.urls == [f"{BASE}/v1.0/users"]


def test_export_blobs_come_only_from_azure_storage_or_graphs_own_host():
    g = graph(RecordingHttp([]))
    azure = ExportManifest(id="m", root_directory="https://acct.blob.core.windows.net/c/m", sas_token="sig=1",
                           blob_names=["part 1.json.gz"])
    assert g._blob_url(azure, "part 1.json.gz") == "https://acct.blob.core.windows.net/c/m/part%201.json.gz?sig=1"
    own = ExportManifest(id="m", root_directory=f"{BASE}/blobs/billing/m", sas_token="sig=1")
    assert g._blob_url(own, "a.gz").startswith(f"{BASE}/blobs/billing/m/a.gz")
    for root in ("http://acct.blob.core.windows.net/c", "https://10.0.0.5/internal", "file:///etc"):
        with pytest.raises(MicrosoftError):
            g._blob_url(ExportManifest(id="m", root_directory=root, sas_token=""), "a.gz")
