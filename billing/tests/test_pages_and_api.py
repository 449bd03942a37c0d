"""Customer billing pages and the invoices API: roles, tenancy (404), lines, printable copy, CSV, e-mail."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse
from pypdf import PdfReader

from accounts.roles import Role
from accounts.tests.api_support import api_client_for
from accounts.tests.factories import MembershipFactory, OrganizationFactory
from accounts.tests.helpers import verified_client
from billing.services import invoices as invoice_services
from billing.services.pricing import billing_profile_update
from core.audit import Actor
from licensing import nce
from licensing.tests.core.factories import SeatBatchFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db
START = datetime(2026, 1, 15, 10, tzinfo=UTC)


def billed(org) -> list:
    sub = SubscriptionFactory(organization=org, unit_price=Decimal("30.00"), quantity=5, start_date=START,
                              commitment_end=nce.term_end(START, "P1Y"), product_title="Microsoft 365 Business Basic")
    SeatBatchFactory(subscription=sub, quantity=5, added_at=START)
    documents = []
    for month in (1, 2, 3):
        documents += invoice_services.billing_run_organization(organization=org, month=date(2026, month, 1),
                                                               now=datetime(2026, month + 1, 1, tzinfo=UTC))
    return documents


def test_billing_pages_for_a_billing_admin(client):
    member = MembershipFactory(role=Role.BILLING_ADMIN)
    org = member.organization
    documents = billed(org)
    verified_client(client, member.user)
    overview = client.get(reverse("billing:overview", args=[org.slug]))
    assert overview.status_code == 200
    body = overview.content.decode()
    assert "Net billed per month in USD" in body and documents[0].number in body
    assert "USD 450.00" in body  # three open invoices of 150.00 still to pay
    listing = client.get(reverse("billing:invoices", args=[org.slug]), {"status": "open"}).content.decode()
    assert all(d.number in listing for d in documents)
    assert "No invoice matches" in client.get(reverse("billing:invoices", args=[org.slug]),
                                              {"q": "nothing-like-this"}).content.decode()
    detail = client.get(reverse("billing:invoice", args=[org.slug, documents[0].pk])).content.decode()
    assert "Microsoft 365 Business Basic" in detail and "5 seats × USD 30.00" in detail
    printable = client.get(reverse("billing:invoice_print", args=[org.slug, documents[0].pk]))
    assert printable.status_code == 200 and b"data-print" in printable.content and b"<script>" not in printable.content
    response = client.get(reverse("billing:invoice_csv", args=[org.slug, documents[0].pk]))
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][0] == "invoice" and rows[1][:2] == [documents[0].number, "2026-02-01"]
    assert rows[1][10] == "150.00"


def test_pages_empty_state_and_roles(client):
    member = MembershipFactory(role=Role.LICENSE_ADMIN)
    verified_client(client, member.user)
    assert client.get(reverse("billing:overview", args=[member.organization.slug])).status_code == 403
    viewer = MembershipFactory(role=Role.VIEWER)
    verified_client(client, viewer.user)
    page = client.get(reverse("billing:invoices", args=[viewer.organization.slug])).content.decode()
    assert "No invoices yet" in page


def test_another_organisations_invoice_is_not_found(client):
    member = MembershipFactory(role=Role.OWNER)
    other = billed(OrganizationFactory())
    verified_client(client, member.user)
    for name in ("billing:invoice", "billing:invoice_print", "billing:invoice_csv"):
        assert client.get(reverse(name, args=[member.organization.slug, other[0].pk])).status_code == 404


def test_invoices_api_is_read_only_and_scoped():
    org = OrganizationFactory()
    documents = billed(org)
    client = api_client_for(org, Role.VIEWER)
    body = client.get("/api/v1/invoices/").json()
    assert body["count"] == 3 and body["results"][0]["lines"] == []
    detail = client.get(f"/api/v1/invoices/{documents[0].pk}/").json()
    assert detail["number"] == documents[0].number and detail["total"] == "150.00"
    assert detail["lines"][0]["ms_subscription_id"] and detail["lines"][0]["quantity"] == 5
    assert client.post("/api/v1/invoices/", {}).status_code == 405
    assert client.get("/api/v1/invoices/", {"kind": "credit_note"}).json()["count"] == 0
    other = billed(OrganizationFactory())
    missing = client.get(f"/api/v1/invoices/{other[0].pk}/")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert api_client_for(org, Role.LICENSE_ADMIN).get("/api/v1/invoices/").status_code == 403


def test_an_issued_invoice_is_emailed_once_to_the_billing_contacts(django_capture_on_commit_callbacks):
    org = OrganizationFactory()
    billing_profile_update(organization=org, actor=Actor.system("t"),
                           contacts=[{"name": "Accounts", "email": "ap@example.com"}])
    with django_capture_on_commit_callbacks(execute=True):
        [invoice] = billed(org)[:1]
    assert [m.to for m in mail.outbox] == [["ap@example.com"]] * 3
    assert invoice.number in mail.outbox[0].subject
    assert not invoice_services.invoice_email(organization=org, invoice_id=invoice.pk)  # never twice
    assert len(mail.outbox) == 3


def test_the_customer_reconciliation_export_ties_lines_to_subscriptions_and_seats(client):
    member = MembershipFactory(role=Role.VIEWER)
    org = member.organization
    documents = billed(org)
    billed(OrganizationFactory())  # another customer's lines never appear
    verified_client(client, member.user)
    response = client.get(reverse("billing:reconciliation_export", args=[org.slug]))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["invoice"] for r in rows] == [d.number for d in documents]
    assert {(r["quantity_billed"], r["seats_today"], r["subscription_status"]) for r in rows} == {("5", "5", "active")}
    assert all(r["microsoft_subscription_id"] for r in rows)


def test_the_invoice_pdf_carries_its_lines_and_totals(client, settings):
    settings.BILLING_SELLER_NAME = "Contoso Cloud Reseller Ltd"
    member = MembershipFactory(role=Role.BILLING_ADMIN)
    org = member.organization
    invoice = billed(org)[0]
    verified_client(client, member.user)
    response = client.get(reverse("billing:invoice_pdf", args=[org.slug, invoice.pk]))
    assert response["Content-Type"] == "application/pdf"
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert f"Invoice {invoice.number}" in text and "Contoso Cloud Reseller Ltd" in text
    assert "Microsoft 365 Business Basic" in text and "150.00" in text
    assert f"Total USD {invoice.total}" in text.replace("\n", " ") or f"USD {invoice.total}" in text
    api = api_client_for(org, Role.VIEWER).get(f"/api/v1/invoices/{invoice.pk}/pdf/")
    assert api.status_code == 200 and api.content.startswith(b"%PDF")


def test_billing_profile_api_shows_terms_and_changes_contacts_only():
    org = OrganizationFactory()
    viewer = api_client_for(org, Role.VIEWER)
    body = viewer.get("/api/v1/billing-profile/").json()
    assert (body["currency"], body["payment_terms_days"], body["contacts"]) == ("USD", 30, [])
    assert viewer.patch("/api/v1/billing-profile/", {"contacts": []}, content_type="application/json"
                        ).status_code == 403
    admin = api_client_for(org, Role.BILLING_ADMIN)
    bad = admin.patch("/api/v1/billing-profile/", {"contacts": [{"email": "not-an-email"}]},
                      content_type="application/json")
    assert bad.status_code == 400 and bad.json()["error"]["fields"]
    ok = admin.patch("/api/v1/billing-profile/", {"contacts": [{"name": "AP", "email": "AP@Example.com"}],
                                                   "currency": "EUR"}, content_type="application/json").json()
    assert ok["contacts"] == [{"name": "AP", "email": "ap@example.com"}] and ok["currency"] == "USD"
