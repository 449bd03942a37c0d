"""Global Privacy Control and opt-outs: recorded, kept, shown with their date, and obeyed by disclosures."""

from __future__ import annotations

import datetime
import json

import pytest
import time_machine
from django.test import Client

from accounts.roles import Role
from accounts.tests.api_support import api_client_for
from accounts.tests.factories import MembershipFactory, OrganizationFactory
from accounts.tests.helpers import verified_client
from core import disclosures
from core.disclosures import DisclosureRefused, disclosure_record
from core.models import AuditEvent, Disclosure
from privacy import optout_cookie
from privacy.middleware import gpc_signal
from privacy.models import BrowserOptOut, OptOut, OptOutMethod

pytestmark = pytest.mark.django_db

HONORED = "Opt-Out Request Honored"
DAY = datetime.datetime(2026, 3, 14, 15, 9, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("raw", "counts"),
    [
        ("1", True),
        (" 1 ", True),
        ("1\t", True),
        ("0, 1", True),  # repeated headers arrive comma-joined: any "1" counts
        ("0", False),
        ("true", False),
        ("TRUE", False),
        ("yes", False),
        ("01", False),
        ("1.0", False),
        ("", False),
        (None, False),
    ],
)
def test_only_exactly_one_counts(raw, counts):
    assert gpc_signal(raw) is counts


@time_machine.travel(DAY, tick=False)
def test_anonymous_first_request_is_an_opt_out_kept_for_the_browser():
    browser = Client()
    first = browser.get("/accounts/login/", HTTP_SEC_GPC="1")
    html = first.content.decode()
    assert HONORED in html and 'datetime="2026-03-14"' in html and "14 March 2026" in html
    assert "Sec-GPC" in first["Vary"]
    cookie = first.cookies[optout_cookie.COOKIE_NAME]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    evidence = BrowserOptOut.objects.get()
    assert evidence.method == OptOutMethod.GPC and evidence.recorded_at == DAY
    # A later request without the header: still opted out, nothing new recorded.
    later = browser.get("/privacy/")
    assert HONORED in later.content.decode()
    assert BrowserOptOut.objects.count() == 1
    assert optout_cookie.COOKIE_NAME not in later.cookies


@pytest.mark.parametrize("value", ["0", "true", ""])
def test_other_values_and_no_header_record_nothing(value):
    browser = Client()
    headers = {"HTTP_SEC_GPC": value} if value else {}
    response = browser.get("/accounts/login/", **headers)
    assert HONORED not in response.content.decode()
    assert optout_cookie.COOKIE_NAME not in response.cookies
    assert not BrowserOptOut.objects.exists() and not OptOut.objects.exists()
    assert "Sec-GPC" in response["Vary"]


def test_a_forged_cookie_is_ignored():
    browser = Client()
    browser.cookies[optout_cookie.COOKIE_NAME] = "eyJiIjoiYSIsImQiOiIyMDIwLTAxLTAxIiwibSI6ImZvcm0ifQ:bad:sig"
    assert HONORED not in browser.get("/accounts/login/").content.decode()


def test_signed_in_user_opt_out_persists_to_account_and_organisations():
    membership = MembershipFactory(organization__slug="acme", role=Role.VIEWER)
    other = MembershipFactory(user=membership.user, organization__slug="globex").organization
    user = membership.user
    with time_machine.travel(DAY, tick=False):
        client = verified_client(Client(), user)
        assert HONORED in client.get("/o/acme/", HTTP_SEC_GPC="1").content.decode()
    record = OptOut.objects.get(user=user)
    assert record.method == OptOutMethod.GPC and record.recorded_at == DAY
    assert set(OptOut.objects.filter(organization__isnull=False).values_list("organization__slug", flat=True)) == {
        "acme",
        other.slug,
    }
    assert AuditEvent.unscoped_objects.filter(action="privacy.opt_out_recorded").count() == 3
    # Next day, another browser without the signal: still opted out, and the page still says so, with the date.
    with time_machine.travel(DAY + datetime.timedelta(days=1), tick=False):
        fresh = verified_client(Client(), user)
        html = fresh.get("/o/acme/").content.decode()
    assert HONORED in html and 'datetime="2026-03-14"' in html
    assert OptOut.objects.filter(user=user).count() == 1


def test_anonymous_opt_out_follows_the_browser_into_the_account():
    user = MembershipFactory(organization__slug="acme").user
    browser = Client()
    browser.get("/privacy/", HTTP_SEC_GPC="1")
    assert not OptOut.objects.exists()
    verified_client(browser, user)
    browser.get("/o/acme/")  # no header now: the browser's opt-out is the person's
    assert OptOut.objects.get(user=user).method == OptOutMethod.GPC


def test_user_without_any_opt_out_sees_no_notice():
    user = MembershipFactory(organization__slug="acme").user
    client = verified_client(Client(), user)
    assert HONORED not in client.get("/o/acme/").content.decode()
    assert not OptOut.objects.exists()


def test_gpc_json_per_spec(client):
    response = client.get("/.well-known/gpc.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert body["gpc"] is True
    datetime.date.fromisoformat(body["lastUpdate"])
    # Also for someone signed in whose second factor is not verified yet.
    client.force_login(MembershipFactory().user)
    assert client.get("/.well-known/gpc.json").status_code == 200


def test_choices_form_opts_out_an_anonymous_browser_without_javascript():
    browser = Client()
    page = browser.get("/privacy/choices/").content.decode()
    assert 'name="opt_out"' in page and "<script" not in page.split("<body", 1)[1].split("</body>")[0]
    assert browser.post("/privacy/choices/", {}).status_code == 400
    assert not BrowserOptOut.objects.exists()
    response = browser.post("/privacy/choices/", {"opt_out": "1"}, follow=True)
    assert HONORED in response.content.decode()
    assert BrowserOptOut.objects.get().method == OptOutMethod.FORM


def test_choices_form_opts_out_a_signed_in_person_and_their_organisation():
    membership = MembershipFactory(organization__slug="acme")
    client = verified_client(Client(), membership.user)
    client.post("/privacy/choices/", {"opt_out": "1"})
    assert OptOut.objects.get(user=membership.user).method == OptOutMethod.FORM
    assert OptOut.objects.get(organization=membership.organization).method == OptOutMethod.FORM


def test_api_opt_out_is_recorded_on_the_organisation_and_idempotent():
    organization = OrganizationFactory()
    api = api_client_for(organization, Role.VIEWER)
    assert api.get("/api/v1/privacy/opt-out/").json() == {"opted_out": False, "since": None, "method": ""}
    first = api.post("/api/v1/privacy/opt-out/")
    assert first.status_code == 200 and first.json()["opted_out"] is True and first.json()["method"] == "api"
    again = api.post("/api/v1/privacy/opt-out/").json()
    assert again["since"] == first.json()["since"]
    assert OptOut.objects.filter(organization=organization).count() == 1
    # Another organisation is untouched.
    assert api_client_for(OrganizationFactory()).get("/api/v1/privacy/opt-out/").json()["opted_out"] is False


def _marketing(organization):
    return disclosure_record(
        recipient=Disclosure.Recipient.DISTRIBUTOR,
        organization=organization,
        categories=["contact"],
        purpose=Disclosure.Purpose.MARKETING,
        operation="distributor.marketing_feed",
        ms_request_id="",
    )


def test_opted_out_organisation_gets_no_non_essential_disclosure():
    opted, other = OrganizationFactory(), OrganizationFactory()
    joined_later = OrganizationFactory()
    api_client_for(opted).post("/api/v1/privacy/opt-out/")
    with pytest.raises(DisclosureRefused):
        _marketing(opted)
    assert _marketing(other).organization == other
    # Necessary disclosures still happen: the service depends on them.
    disclosure_record(recipient=Disclosure.Recipient.MICROSOFT, organization=opted, categories=["identity"],
                      purpose=Disclosure.Purpose.PROVISIONING, operation="customer.create", ms_request_id="r-1")
    # A member who opted out before joining an organisation covers it too.
    person = MembershipFactory().user
    verified_client(Client(), person).post("/privacy/choices/", {"opt_out": "1"})
    MembershipFactory(user=person, organization=joined_later)
    with pytest.raises(DisclosureRefused):
        _marketing(joined_later)
    assert not Disclosure.objects.filter(organization__in=[opted, joined_later], purpose="marketing").exists()


def test_without_an_opt_out_check_non_essential_disclosures_fail_closed(monkeypatch):
    monkeypatch.setattr(disclosures, "_opt_out_checks", [])
    with pytest.raises(DisclosureRefused):
        _marketing(OrganizationFactory())
