"""The officer downloads every request record as CSV (no requester identifiers, audited); the public
form admits a few requests per address per hour, counted without storing the address."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.cache import cache
from django.test import Client

from accounts.tests.factories import UserFactory
from accounts.tests.helpers import verified_client
from core.models import AuditEvent
from privacy.models import PrivacyRequest
from privacy.services.requests import request_submit_public

from .factories import make_officer

pytestmark = pytest.mark.django_db


def test_the_officer_downloads_every_request_record_as_csv():
    request_submit_public(email="ana@contoso.example", name="Ana Gracia", kind="access", region="eu_uk")
    request_submit_public(email="ben@contoso.example", name="", kind="deletion", region="us_ca")
    officer = make_officer()
    response = verified_client(Client(), officer).get("/privacy/console/requests.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert {r["reference"] for r in rows} == set(PrivacyRequest.objects.values_list("reference", flat=True))
    assert {r["kind"] for r in rows} == {"access", "deletion"} and rows[0]["received_at"]
    assert "ana@contoso.example" not in body and "Ana Gracia" not in body
    assert AuditEvent.unscoped_objects.filter(action="privacy.request_records_exported",
                                              actor_id=str(officer.pk)).exists()
    # Not for customers or other staff: the console does not exist for them.
    assert verified_client(Client(), UserFactory()).get("/privacy/console/requests.csv").status_code == 404


def test_the_public_form_admits_five_requests_per_address_per_hour(settings):
    settings.PRIVACY_PUBLIC_FORM_PER_IP_HOUR = 5
    browser = Client(REMOTE_ADDR="203.0.113.7")

    def submit(n):
        return browser.post("/privacy/requests/new/", {"name": "P", "email": f"p{n}@example.org", "kind": "access",
                                                       "region": "eu_uk", "details": ""})

    assert browser.post("/privacy/requests/new/", {"email": "nope", "kind": "access"}).status_code == 400
    assert [submit(n).status_code for n in range(5)] == [302] * 5  # the typo above did not count
    refused = submit(6)
    assert refused.status_code == 429 and "Too many requests" in refused.content.decode()
    assert PrivacyRequest.objects.count() == 5  # nothing half-written
    # Another address is not affected; the count is kept under a keyed hash, never the address.
    assert Client(REMOTE_ADDR="198.51.100.9").post(
        "/privacy/requests/new/", {"name": "P", "email": "q@example.org", "kind": "access", "region": "eu_uk",
                                  "details": ""}
    ).status_code == 302
    if hasattr(cache, "_cache") and isinstance(cache._cache, dict):  # local memory cache: inspect the keys
        assert not any("203.0.113.7" in str(key) for key in cache._cache)
