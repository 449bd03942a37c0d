"""Tokenised payment methods and payments: the hosted page, tokens only, declines write nothing,
paying twice charges once, bank transfers by staff."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse

from accounts.roles import Role
from accounts.tests.api_support import api_client_for
from accounts.tests.factories import MembershipFactory, OrganizationFactory
from accounts.tests.helpers import verified_client
from billing.gateway import TestGateway
from billing.models import Invoice, Payment, PaymentMethod
from billing.services import invoices as invoice_services
from billing.services import payments as payment_services
from core.audit import Actor
from licensing import nce
from licensing.tests.core.factories import SeatBatchFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db
START = datetime(2026, 1, 15, 10, tzinfo=UTC)
ACTOR = Actor.system("test")
APPROVED, DECLINED, BROKE = "4242 4242 4242 4242", "4000000000000002", "4000000000009995"


def token(number=APPROVED, month=12, year=2099):
    return TestGateway().tokenize(number=number, exp_month=month, exp_year=year, cvc="123")


def an_invoice(org) -> Invoice:
    sub = SubscriptionFactory(organization=org, unit_price=Decimal("30.00"), quantity=5, start_date=START,
                              commitment_end=nce.term_end(START, "P1Y"))
    SeatBatchFactory(subscription=sub, quantity=5, added_at=START)
    [invoice] = invoice_services.billing_run_organization(organization=org, month=date(2026, 1, 1),
                                                         now=datetime(2026, 2, 1, tzinfo=UTC))
    return invoice


def add(org, tok):
    return payment_services.payment_method_add(organization=org, actor=ACTOR, user=None, token=tok)


def test_only_the_token_brand_last4_and_expiry_are_kept():
    org = OrganizationFactory()
    method = add(org, token())
    assert (method.brand, method.last4, method.exp_month, method.exp_year, method.is_default) == (
        "visa", "4242", 12, 2099, True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT token, last4 FROM billing_paymentmethod")
        [(stored, last4)] = cursor.fetchall()
    assert "4242424242424242" not in stored and "tok_test_" not in stored  # encrypted at rest
    assert last4 != "4242" and last4.startswith("v1:")


@pytest.mark.parametrize("bad, code", [("tok_test_forged.sig", "invalid_token"), ("", "invalid_token")])
def test_a_forged_token_is_refused(bad, code):
    org = OrganizationFactory()
    with pytest.raises(ValidationError) as caught:
        add(org, bad)
    assert caught.value.code == code and not PaymentMethod.unscoped_objects.exists()
    altered = token()[:-2] + "xx"
    with pytest.raises(ValidationError):
        add(org, altered)


def test_an_expired_card_is_refused():
    with pytest.raises(ValidationError, match="expired"):
        add(OrganizationFactory(), token(year=2020))


def test_pay_by_card_once_even_when_retried():
    org = OrganizationFactory()
    invoice = an_invoice(org)
    method = add(org, token())
    first = payment_services.invoice_pay_by_card(organization=org, actor=ACTOR, user=None, invoice=invoice,
                                                 method=method, idempotency_key="k1")
    again = payment_services.invoice_pay_by_card(organization=org, actor=ACTOR, user=None, invoice=invoice,
                                                 method=method, idempotency_key="k1")
    assert first.pk == again.pk and Payment.unscoped_objects.count() == 1
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and first.amount == invoice.total == Decimal("150.00")
    with pytest.raises(ValidationError, match="nothing to pay"):
        payment_services.invoice_pay_by_card(organization=org, actor=ACTOR, user=None, invoice=invoice,
                                             method=method, idempotency_key="k2")


@pytest.mark.parametrize("number, words", [(DECLINED, "declined by its bank"), (BROKE, "insufficient funds")])
def test_a_decline_is_a_clear_error_and_writes_nothing(number, words):
    org = OrganizationFactory()
    invoice = an_invoice(org)
    method = add(org, token(number))
    with pytest.raises(ValidationError, match=words):
        payment_services.invoice_pay_by_card(organization=org, actor=ACTOR, user=None, invoice=invoice,
                                             method=method, idempotency_key="k1")
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.OPEN and not Payment.unscoped_objects.exists()


def test_bank_transfer_recorded_by_staff_may_not_exceed_the_balance():
    org = OrganizationFactory()
    invoice = an_invoice(org)
    with pytest.raises(ValidationError, match=r"more than the USD 150\.00 still due") as caught:
        payment_services.payment_record_bank_transfer(organization=org, actor=ACTOR, user=None, invoice=invoice,
                                                      amount=Decimal("150.01"), reference="BANK-1")
    assert caught.value.code == "overpayment" and not Payment.unscoped_objects.exists()
    payment_services.payment_record_bank_transfer(organization=org, actor=ACTOR, user=None, invoice=invoice,
                                                  amount=Decimal("150.00"), reference="BANK-1")
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID


def test_add_a_card_through_the_hosted_page_then_pay_the_invoice(client):
    member = MembershipFactory(role=Role.BILLING_ADMIN)
    org = member.organization
    invoice = an_invoice(org)
    verified_client(client, member.user)
    to_gateway = client.post(reverse("billing:add_card", args=[org.slug]))
    hosted = urlparse(to_gateway["Location"])
    query = {k: v[0] for k, v in parse_qs(hosted.query).items()}
    assert hosted.path == reverse("test_gateway:hosted_fields")
    assert client.get(hosted.path, query).status_code == 200
    bad = client.post(hosted.path, {**query, "number": "4242 4242 4242 4241", "expiry": "12/30", "cvc": "123"})
    assert bad.status_code == 400 and b"not a valid card number" in bad.content
    back = client.post(hosted.path, {**query, "number": APPROVED, "expiry": "12/30", "cvc": "123"})
    back_url = urlparse(back["Location"])
    assert back_url.path == reverse("billing:card_added", args=[org.slug]) and "4242424242" not in back["Location"]
    client.get(back["Location"])
    method = PaymentMethod.objects.for_org(org).get()
    assert str(method) == "Visa ending 4242"
    page = client.get(reverse("billing:invoice", args=[org.slug, invoice.pk])).content.decode()
    assert "Pay now" in page
    client.post(reverse("billing:invoice_pay", args=[org.slug, invoice.pk]),
                {"method": str(method.pk), "idempotency_key": "abc"})
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert "Paid USD 150.00" in client.get(reverse("billing:invoice", args=[org.slug, invoice.pk])).content.decode()


def test_a_return_with_someone_elses_state_adds_nothing(client):
    member = MembershipFactory(role=Role.OWNER)
    verified_client(client, member.user)
    url = reverse("billing:card_added", args=[member.organization.slug])
    client.get(url, {"token": token(), "state": "forged"})
    assert not PaymentMethod.unscoped_objects.exists()


def test_hosted_page_only_returns_to_the_portal(client):
    assert client.get(reverse("test_gateway:hosted_fields"), {"return_url": "https://evil.example/o/x"}
                      ).status_code == 400


def test_payment_methods_api_shows_references_only():
    org = OrganizationFactory()
    add(org, token())
    body = api_client_for(org, Role.BILLING_ADMIN).get("/api/v1/payment-methods/").json()
    assert body["results"][0]["last4"] == "4242" and "token" not in body["results"][0]
    assert api_client_for(org, Role.VIEWER).get("/api/v1/payment-methods/").status_code == 403
