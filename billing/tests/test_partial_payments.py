"""Paying an invoice in parts (card and bank transfer), refusing overpayment and bad amounts, and refunds
through the gateway that reopen the balance, all or nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from accounts.roles import Role
from accounts.tests.api_support import api_client_for
from accounts.tests.factories import MembershipFactory, OrganizationFactory
from accounts.tests.helpers import verified_client
from billing.gateway import TestGateway
from billing.models import Invoice, Payment, Refund
from billing.selectors import invoices as selectors
from billing.services import invoices as invoice_services
from billing.services import payments as payment_services
from core.audit import Actor
from core.models import AuditEvent
from licensing import nce
from licensing.tests.core.factories import SeatBatchFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db
START = datetime(2026, 1, 15, 10, tzinfo=UTC)
ISSUED = datetime(2026, 2, 1, tzinfo=UTC)  # due 3 March (30 days' terms)
ACTOR = Actor.system("test")
APPROVED, REFUND_FAILS = "4242424242424242", "4000000000005126"


def an_invoice(org=None) -> Invoice:
    """USD 300.00: ten seats at 30.00 for January."""
    sub = SubscriptionFactory(organization=org or OrganizationFactory(), unit_price=Decimal("30.00"), quantity=10,
                              start_date=START, commitment_end=nce.term_end(START, "P1Y"))
    SeatBatchFactory(subscription=sub, quantity=10, added_at=START)
    [invoice] = invoice_services.billing_run_organization(organization=sub.organization, month=date(2026, 1, 1),
                                                         now=ISSUED)
    return invoice


def card(org, number=APPROVED):
    token = TestGateway().tokenize(number=number, exp_month=12, exp_year=2099, cvc="123")
    return payment_services.payment_method_add(organization=org, actor=ACTOR, user=None, token=token)


def pay(invoice, method, key, amount=None, currency=None):
    return payment_services.invoice_pay_by_card(organization=invoice.organization, actor=ACTOR, user=None,
                                                invoice=invoice, method=method, idempotency_key=key, amount=amount,
                                                currency=currency)


def transfer(invoice, amount, reference):
    return payment_services.payment_record_bank_transfer(organization=invoice.organization, actor=ACTOR, user=None,
                                                         invoice=invoice, amount=amount, reference=reference)


def refund(payment, key, amount=None, reason="Seats never used", **extra):
    return payment_services.payment_refund(organization=payment.organization, actor=ACTOR, user=None,
                                           payment=payment, reason=reason, idempotency_key=key, amount=amount,
                                           **extra)


def state(invoice):
    invoice.refresh_from_db()
    return invoice.status, invoice.amount_paid, invoice.balance


@time_machine.travel(datetime(2026, 2, 10, 12, tzinfo=UTC), tick=False)
def test_an_invoice_paid_in_parts_by_card_and_transfer():
    invoice = an_invoice()
    method = card(invoice.organization)
    pay(invoice, method, "part-1", amount="100.00")
    assert state(invoice) == (Invoice.Status.PARTIALLY_PAID, Decimal("100.00"), Decimal("200.00"))
    transfer(invoice, Decimal("150.50"), "BANK-77")
    transfer(invoice, Decimal("150.50"), "BANK-77")  # recorded twice by mistake: the same transfer
    assert state(invoice) == (Invoice.Status.PARTIALLY_PAID, Decimal("250.50"), Decimal("49.50"))
    last = pay(invoice, method, "rest")  # no amount: the balance
    assert last.amount == Decimal("49.50")
    status, paid, balance = state(invoice)
    assert (status, paid, balance) == (Invoice.Status.PAID, Decimal("300.00"), Decimal("0.00"))
    assert invoice.paid_at == datetime(2026, 2, 10, 12, tzinfo=UTC)
    assert Payment.unscoped_objects.filter(invoice=invoice).count() == 3
    assert AuditEvent.unscoped_objects.filter(action="billing.invoice_paid").count() == 3


@time_machine.travel(datetime(2026, 2, 10, tzinfo=UTC), tick=False)
@pytest.mark.parametrize("amount, code, words", [
    ("300.01", "overpayment", r"more than the USD 300\.00 still due"),
    ("-5", "invalid_amount", "more than zero"),
    ("0", "invalid_amount", "more than zero"),
    ("10.005", "invalid_amount", "two decimals"),
    ("ten", "invalid_amount", "not an amount"),
    (12.5, "invalid_amount", "decimal strings"),
])
def test_bad_amounts_are_refused_and_charge_nothing(amount, code, words):
    invoice = an_invoice()
    with pytest.raises(ValidationError, match=words) as caught:
        pay(invoice, card(invoice.organization), "k", amount=amount)
    assert caught.value.code == code
    assert state(invoice) == (Invoice.Status.OPEN, Decimal("0.00"), Decimal("300.00"))
    assert not Payment.unscoped_objects.exists()


@pytest.mark.parametrize("currency, code", [("XYZ", "unknown_currency"), ("EUR", "currency_mismatch")])
def test_an_unknown_or_other_currency_is_refused(currency, code, settings):
    settings.BILLING_CURRENCIES = ("USD", "EUR")
    invoice = an_invoice()
    with pytest.raises(ValidationError) as caught:
        pay(invoice, card(invoice.organization), "k", amount="10.00", currency=currency)
    assert caught.value.code == code and not Payment.unscoped_objects.exists()


def test_the_database_refuses_an_overpaid_invoice():
    invoice = an_invoice()
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.unscoped_objects.filter(pk=invoice.pk).update(amount_paid=Decimal("300.01"))


def test_a_part_paid_invoice_past_due_is_overdue_and_still_payable():
    invoice = an_invoice()
    with time_machine.travel(datetime(2026, 2, 10, tzinfo=UTC), tick=False):
        transfer(invoice, Decimal("100.00"), "BANK-1")
    assert invoice_services.invoices_mark_overdue(organization=invoice.organization,
                                                  now=datetime(2026, 3, 10, tzinfo=UTC)) == 1
    assert state(invoice) == (Invoice.Status.OVERDUE, Decimal("100.00"), Decimal("200.00"))
    assert selectors.outstanding(invoice.organization) == {"USD": Decimal("200.00")}
    with time_machine.travel(datetime(2026, 3, 11, tzinfo=UTC), tick=False):
        transfer(invoice, Decimal("200.00"), "BANK-2")
    assert state(invoice)[0] == Invoice.Status.PAID


@time_machine.travel(datetime(2026, 2, 10, tzinfo=UTC), tick=False)
def test_a_card_refund_through_the_gateway_reopens_the_balance_and_is_audited():
    invoice = an_invoice()
    payment = pay(invoice, card(invoice.organization), "all")
    assert state(invoice)[0] == Invoice.Status.PAID
    first = refund(payment, "r1", amount="40.00")
    assert first.reference.startswith("re_") and first.amount == Decimal("40.00")
    assert state(invoice) == (Invoice.Status.PARTIALLY_PAID, Decimal("260.00"), Decimal("40.00"))
    assert refund(payment, "r1", amount="40.00").pk == first.pk  # retried: refunded once
    with pytest.raises(ValidationError, match=r"more than the USD 260\.00 left to refund") as caught:
        refund(payment, "r2", amount="260.01")
    assert caught.value.code == "overpayment"
    refund(payment, "r3")  # the rest
    assert state(invoice) == (Invoice.Status.OPEN, Decimal("0.00"), Decimal("300.00"))
    with pytest.raises(ValidationError, match="refunded in full already"):
        refund(payment, "r4", amount="1.00")
    assert sum(r.amount for r in Refund.unscoped_objects.all()) == payment.amount
    events = AuditEvent.unscoped_objects.filter(action="billing.payment_refunded").order_by("sequence")
    assert [e.metadata["amount"] for e in events] == ["40.00", "260.00"]


@time_machine.travel(datetime(2026, 2, 10, tzinfo=UTC), tick=False)
@pytest.mark.parametrize("amount, words", [("-1", "more than zero"), ("abc", "not an amount")])
def test_bad_refunds_write_nothing(amount, words):
    invoice = an_invoice()
    payment = pay(invoice, card(invoice.organization), "all")
    with pytest.raises(ValidationError, match=words):
        refund(payment, "r", amount=amount)
    with pytest.raises(ValidationError, match="Say why"):
        refund(payment, "r", amount="1.00", reason=" ")
    assert not Refund.unscoped_objects.exists() and state(invoice)[0] == Invoice.Status.PAID


@time_machine.travel(datetime(2026, 2, 10, tzinfo=UTC), tick=False)
def test_a_refund_the_gateway_declines_leaves_nothing_half_written():
    invoice = an_invoice()
    payment = pay(invoice, card(invoice.organization, REFUND_FAILS), "all")
    with pytest.raises(ValidationError, match="refused the refund") as caught:
        refund(payment, "r1", amount="10.00")
    assert caught.value.code == "refund_declined"
    assert not Refund.unscoped_objects.exists()
    assert state(invoice) == (Invoice.Status.PAID, Decimal("300.00"), Decimal("0.00"))
    assert not AuditEvent.unscoped_objects.filter(action="billing.payment_refunded").exists()


@time_machine.travel(datetime(2026, 2, 10, tzinfo=UTC), tick=False)
def test_a_transfer_is_refunded_by_the_bank_with_its_reference():
    invoice = an_invoice()
    payment = transfer(invoice, Decimal("300.00"), "BANK-1")
    with pytest.raises(ValidationError, match="bank's reference"):
        refund(payment, "r1", amount="50.00")
    refund(payment, "r1", amount="50.00", reference="BANK-BACK-1")
    assert state(invoice) == (Invoice.Status.PARTIALLY_PAID, Decimal("250.00"), Decimal("50.00"))


@time_machine.travel(datetime(2026, 2, 10, tzinfo=UTC), tick=False)
def test_a_voided_invoice_can_still_be_refunded_and_stays_void():
    invoice = an_invoice()
    payment = pay(invoice, card(invoice.organization), "all")
    invoice_services.invoice_credit_in_full(invoice=invoice, actor=ACTOR, reason="Wrong seats")
    refund(payment, "r1")
    assert state(invoice) == (Invoice.Status.VOID, Decimal("0.00"), Decimal("0.00"))


@time_machine.travel(datetime(2026, 2, 10, tzinfo=UTC), tick=False)
def test_the_customer_page_and_api_show_payments_refunds_and_balance(client):
    member = MembershipFactory(role=Role.BILLING_ADMIN)
    invoice = an_invoice(member.organization)
    org = invoice.organization
    method = card(org)
    verified_client(client, member.user)
    url = reverse("billing:invoice", args=[org.slug, invoice.pk])
    client.post(reverse("billing:invoice_pay", args=[org.slug, invoice.pk]),
                {"method": str(method.pk), "idempotency_key": "p1", "amount": "120.00"})
    refusal = client.post(reverse("billing:invoice_pay", args=[org.slug, invoice.pk]),
                          {"method": str(method.pk), "idempotency_key": "p2", "amount": "999.00"}, follow=True)
    assert "more than the USD 180.00 still due" in refusal.content.decode()
    payment = Payment.unscoped_objects.get()
    refund(payment, "r1", amount="20.00")
    page = client.get(url).content.decode()
    assert "Balance due</dt><dd>USD 200.00</dd>" in page and "Partially paid" in page
    assert "USD 120.00 by card" in page and "Refunded USD 20.00" in page
    body = api_client_for(org, Role.VIEWER).get(f"/api/v1/invoices/{invoice.pk}/").json()
    assert (body["status"], body["amount_paid"], body["balance"]) == ("partially_paid", "100.00", "200.00")
    [paid] = body["payments"]
    assert (paid["amount"], paid["method"], paid["refunds"][0]["amount"]) == ("120.00", "card", "20.00")


@time_machine.travel(datetime(2026, 2, 10, tzinfo=UTC), tick=False)
def test_staff_record_part_of_a_transfer_and_refund_part_of_it_in_the_admin(client):
    from accounts.models import StaffRole
    from accounts.tests.factories import StaffGrantFactory, UserFactory

    invoice = an_invoice()
    staff = UserFactory(is_staff=True, is_superuser=True)
    verified_client(client, staff)
    StaffGrantFactory(staff=staff, organization=invoice.organization, roles=[StaffRole.BILLING_OPERATOR])
    invoices_url = reverse("admin:billing_invoice_changelist")
    ask = client.post(invoices_url, {"action": "record_bank_transfer", "_selected_action": [str(invoice.pk)]})
    assert ask.status_code == 200 and b'name="amount"' in ask.content and b'name="reference"' in ask.content
    client.post(invoices_url, {"action": "record_bank_transfer", "_selected_action": [str(invoice.pk)],
                               "apply": "1", "amount": "120.50", "reference": "BANK-9"})
    assert state(invoice) == (Invoice.Status.PARTIALLY_PAID, Decimal("120.50"), Decimal("179.50"))
    too_much = client.post(invoices_url, {"action": "record_bank_transfer", "_selected_action": [str(invoice.pk)],
                                          "apply": "1", "amount": "500", "reference": "BANK-10"}, follow=True)
    assert "more than the USD 179.50 still due" in too_much.content.decode()
    payment = Payment.unscoped_objects.get()
    client.post(reverse("admin:billing_payment_changelist"), {
        "action": "refund_payment", "_selected_action": [str(payment.pk)], "apply": "1", "amount": "20.50",
        "reason": "Paid twice", "bank_reference": "BANK-BACK-9"})
    assert state(invoice) == (Invoice.Status.PARTIALLY_PAID, Decimal("100.00"), Decimal("200.00"))
    assert Refund.unscoped_objects.get().recorded_by == staff


@time_machine.travel(datetime(2026, 2, 10, tzinfo=UTC), tick=False)
def test_the_api_pays_part_of_an_invoice_and_refuses_bad_input():
    invoice = an_invoice()
    org = invoice.organization
    method = card(org)
    api = api_client_for(org, Role.BILLING_ADMIN)
    url = f"/api/v1/invoices/{invoice.pk}/pay/"

    def post(body, key):
        return api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=key)

    for body, code in [({"payment_method": str(method.pk), "amount": "300.01"}, "overpayment"),
                       ({"payment_method": str(method.pk), "amount": "-1"}, "invalid_amount"),
                       ({"payment_method": str(method.pk), "amount": "5", "currency": "XYZ"}, "unknown_currency"),
                       ({"payment_method": "not-a-uuid"}, "validation_error")]:
        refused = post(body, f"bad-{code}")
        assert refused.status_code == 400 and refused.json()["error"]["code"] == code, refused.json()
    paid = post({"payment_method": str(method.pk), "amount": "75.25"}, "part-1")
    assert paid.status_code == 201 and paid.json()["amount"] == "75.25"
    assert post({"payment_method": str(method.pk), "amount": "75.25"}, "part-1").json() == paid.json()  # replayed
    assert state(invoice) == (Invoice.Status.PARTIALLY_PAID, Decimal("75.25"), Decimal("224.75"))
    viewer = api_client_for(org, Role.VIEWER).post(url, {"payment_method": str(method.pk)}, format="json",
                                                   HTTP_IDEMPOTENCY_KEY="v")
    assert viewer.status_code == 403
    post({"payment_method": str(method.pk)}, "rest")
    assert post({"payment_method": str(method.pk)}, "again").status_code == 409


def test_an_idempotency_key_with_a_nul_byte_is_a_clear_error():
    invoice = an_invoice()
    with pytest.raises(ValidationError, match="reload the page") as caught:
        pay(invoice, card(invoice.organization), "k\x00")
    assert caught.value.code == "invalid_idempotency_key" and not Payment.unscoped_objects.exists()
