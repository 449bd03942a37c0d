"""The monthly billing run: charges by frequency, proration by day, refunds as credit notes, tax,
numbering, idempotency (the database decides) and immutability."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.tests.factories import OrganizationFactory
from billing.models import ImmutableError, Invoice, InvoiceLine, TaxRate
from billing.services import invoices as invoice_services
from billing.services.pricing import billing_profile_update
from billing.tasks import billing_run_all
from core.audit import Actor
from core.tenancy import tenant_context
from licensing import nce
from licensing.models import SeatBatch, Subscription, SubscriptionEvent
from licensing.tests.core.factories import SeatBatchFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)


def at(y, m, d, h=0, minute=0):
    return datetime(y, m, d, h, minute, tzinfo=UTC)


def subscription(org=None, *, cycle="monthly", term="P1Y", seats=10, unit="30.00", start=START, **extra):
    sub = SubscriptionFactory(organization=org or OrganizationFactory(), billing_cycle=cycle, term_duration=term,
                              quantity=seats, unit_price=Decimal(unit), start_date=start,
                              commitment_end=nce.term_end(start, term),
                              cancellation_allowed_until=start + timedelta(days=7), **extra)
    SeatBatchFactory(subscription=sub, quantity=seats, added_at=start)
    return sub


def run(org, month: date, now: datetime | None = None):
    return invoice_services.billing_run_organization(organization=org, month=month,
                                                     now=now or invoice_services.month_bounds(month)[1])


def lines(invoice):
    with tenant_context(invoice.organization):
        return list(invoice.lines.order_by("position"))


def test_monthly_charges_each_period_once():
    sub = subscription()
    org = sub.organization
    [january] = run(org, date(2026, 1, 1))
    charge, tax = lines(january)
    assert (charge.kind, charge.quantity, charge.amount) == ("charge", 10, Decimal("300.00"))
    assert charge.ms_subscription_id == sub.ms_subscription_id
    assert (charge.period_start, charge.period_end) == (at(2026, 1, 15), at(2026, 2, 15))
    assert "10 seats × USD 30.00" in charge.explanation
    assert tax.kind == "tax" and january.total == Decimal("300.00")
    assert run(org, date(2026, 1, 1)) == []  # a second run bills nothing
    [february] = run(org, date(2026, 2, 1))
    assert [ln.period_start for ln in lines(february) if ln.kind == "charge"] == [at(2026, 2, 15)]
    assert (january.number, february.number) == ("INV-2026-000001", "INV-2026-000002")


def test_annual_upfront_is_charged_once_for_the_year():
    sub = subscription(cycle="annual", unit="300.00")
    [january] = run(sub.organization, date(2026, 1, 1))
    assert lines(january)[0].amount == Decimal("3000.00")
    assert lines(january)[0].period_end == at(2027, 1, 15)
    assert run(sub.organization, date(2026, 2, 1)) == []  # nothing falls due in February


def test_triennial_upfront():
    sub = subscription(cycle="triennial", term="P3Y", unit="900.00", seats=2)
    [january] = run(sub.organization, date(2026, 1, 1))
    assert lines(january)[0].amount == Decimal("1800.00") and lines(january)[0].period_end == at(2029, 1, 15)


def test_seats_added_mid_period_are_prorated_by_day_then_charged_with_the_subscription():
    sub = subscription()
    SeatBatchFactory(subscription=sub, source=SeatBatch.Source.ADDITION, quantity=3, added_at=at(2026, 2, 1, 12))
    run(sub.organization, date(2026, 1, 1))
    [february] = run(sub.organization, date(2026, 2, 1))
    prorated = next(ln for ln in lines(february) if ln.kind == "proration")
    # Period 15 Jan to 15 Feb is 31 days; from 1 Feb, 14 days are left: 3 x 30 x 14 / 31 = 40.645... -> 40.65.
    assert (prorated.quantity, prorated.amount) == (3, Decimal("40.65"))
    assert "14 of the 31 days" in prorated.explanation
    charge = next(ln for ln in lines(february) if ln.kind == "charge")
    assert (charge.period_start, charge.quantity) == (at(2026, 2, 15), 13)


def test_in_window_seat_removal_becomes_a_credit_note_agreeing_with_the_simulator():
    sub = subscription()
    added = at(2026, 3, 20, 9)
    removed_at = at(2026, 3, 22, 15)
    batch = SeatBatchFactory(subscription=sub, source=SeatBatch.Source.ADDITION, quantity=4, added_at=added)
    with tenant_context(sub.organization):
        quoted = nce.plan_reduction(batches=list(sub.seat_batches.all()), current_quantity=14, new_quantity=10,
                                    unit_price=sub.unit_price, billing_cycle="monthly",
                                    commitment_end=sub.commitment_end, now=removed_at, billing_anchor=sub.start_date)
    with time_machine.travel(removed_at, tick=False):
        batch.refunded = 4
        batch.refundable_until = removed_at
        batch.save()
    for month in (1, 2):
        run(sub.organization, date(2026, month, 1))
    documents = run(sub.organization, date(2026, 3, 1))
    note = next(d for d in documents if d.kind == Invoice.Kind.CREDIT_NOTE)
    refund = lines(note)[0]
    assert refund.kind == "refund" and refund.quantity == 4
    assert refund.amount == -quoted.refund_total  # the credit is what the simulator promised
    assert note.total == refund.amount and note.number == "CN-2026-000001"
    assert "inside the 7-day window" in refund.explanation
    invoice = next(d for d in documents if d.kind == Invoice.Kind.INVOICE)
    assert any(ln.kind == "proration" for ln in lines(invoice))
    # A later removal from the same batch would credit only the new seats; nothing new here.
    assert run(sub.organization, date(2026, 4, 1))[0].kind == Invoice.Kind.INVOICE


def test_cancellation_inside_the_window_is_refunded_and_stops_charges():
    sub = subscription(start=at(2026, 5, 28, 8))
    cancelled_at = at(2026, 5, 30, 8)
    with time_machine.travel(cancelled_at, tick=False):
        SubscriptionEvent.objects.create(organization=sub.organization, subscription=sub, action="cancelled",
                                         before={"status": "active"}, after={"status": "deleted"})
        Subscription.objects.for_org(sub.organization).filter(pk=sub.pk).update(status=Subscription.Status.DELETED)
    documents = run(sub.organization, date(2026, 5, 1))
    kinds = {d.kind: d for d in documents}
    # Microsoft's rule: the 10-seat line for the days left, minus the 0-seat line, rounded once (not per seat).
    expected = nce.removal_credit(unit_price=Decimal("30.00"), billing_cycle="monthly", anchor=sub.start_date,
                                  added_at=sub.start_date, now=cancelled_at, seats_before=10, seats_removed=10)
    assert kinds["invoice"].total == Decimal("300.00")
    assert kinds["credit_note"].total == -expected
    assert run(sub.organization, date(2026, 6, 1)) == []  # no period after the cancellation is charged


def test_tax_from_the_rate_table_and_reverse_charge(settings):
    TaxRate.objects.create(country="US", name="Sales tax", rate_percent=Decimal("8.25"),
                           effective_from=date(2020, 1, 1))
    sub = subscription(unit="33.33", seats=3)
    [invoice] = run(sub.organization, date(2026, 1, 1))
    assert invoice.subtotal == Decimal("99.99")
    assert invoice.tax_total == Decimal("8.25")  # 8.249... rounded half up once
    assert invoice.total == sum(ln.amount for ln in lines(invoice)) == Decimal("108.24")
    settings.BILLING_SELLER_COUNTRY = "IE"
    german = OrganizationFactory(country="DE", tax_id="DE136695976")
    TaxRate.objects.create(country="DE", name="VAT", rate_percent=Decimal("19"), effective_from=date(2020, 1, 1))
    subscription(german)
    [invoice] = run(german, date(2026, 1, 1))
    assert invoice.tax_total == 0 and invoice.tax_note.startswith("Reverse charge")
    assert invoice.bill_to_tax_id == "DE136695976"


def test_a_month_that_has_not_ended_is_not_billed():
    sub = subscription()
    with pytest.raises(ValidationError, match="has not ended yet"):
        invoice_services.billing_run_organization(organization=sub.organization, month=date(2026, 1, 1),
                                                  now=at(2026, 1, 31, 23, 59))
    assert not Invoice.unscoped_objects.exists()


def test_the_billing_run_task_twice_with_time_frozen_creates_nothing_new():
    subs = [subscription() for _ in range(3)]
    SeatBatchFactory(subscription=subs[0], source=SeatBatch.Source.ADDITION, quantity=2, added_at=at(2026, 1, 20))
    with time_machine.travel(at(2026, 2, 1, 2), tick=False):
        first = billing_run_all()
        counts = (Invoice.unscoped_objects.count(), InvoiceLine.unscoped_objects.count())
        second = billing_run_all()
    assert first["documents"] == 3 and second["documents"] == 0
    assert (Invoice.unscoped_objects.count(), InvoiceLine.unscoped_objects.count()) == counts


def statements(call) -> int:
    with CaptureQueriesContext(connection) as captured:
        call()
    return len(captured)


def test_the_run_costs_a_few_statements_per_batch_of_organisations_and_a_second_run_almost_none(monkeypatch):
    monkeypatch.setattr(invoice_services, "RUN_BATCH", 3)

    def billing_run():
        return invoice_services.billing_run(month=date(2026, 1, 1), now=at(2026, 2, 1, 2))

    subscription()
    billing_run()  # the first document ever also creates the number sequence and the audit chain's head
    for _ in range(3):
        subscription()
    one_batch = statements(billing_run)
    for _ in range(6):  # each with three subscriptions: no statement per subscription, line or organisation
        org = subscription().organization
        subscription(org)
        subscription(org)
    two_batches = statements(billing_run)  # bills the six new organisations, skips the four billed
    per_batch = two_batches - one_batch
    overhead = one_batch - per_batch
    # Inside the test's transaction a batch's scope is a savepoint (plus restoring the scope), in
    # production a transaction of its own: 10 statements between BEGIN and COMMIT. The overhead's two reads
    # across organisations (those billed, and the organisations themselves: decision 044) run as the system
    # role: here, on the one connection inside the test's transaction, each is a savepoint with the scope
    # cleared and restored around it (4 statements more); in production, one statement each on the system
    # connection.
    assert per_batch <= 13 and overhead <= 11
    assert statements(billing_run) == overhead  # everything billed: nothing per organisation or batch
    assert Invoice.unscoped_objects.count() == 10


def test_the_run_reads_the_tax_table_once_and_taxes_like_the_single_lookup():
    for country, region, percent in (("US", "", "5"), ("US", "CA", "7.25"), ("CA", "", "13")):
        TaxRate.objects.create(country=country, region=region, rate_percent=Decimal(percent), name="Tax",
                               effective_from=date(2020, 1, 1))
    TaxRate.objects.create(country="US", region="CA", rate_percent=Decimal("9"), name="Tax",
                           effective_from=date(2026, 6, 1))  # not yet in effect in February 2026
    places = [("US", {"country": "US", "region": "CA"}), ("US", {"country": "US", "region": "NY"}),
              ("CA", None), ("FR", None)]
    orgs = [subscription(OrganizationFactory(country=country, billing_address=address)).organization
            for country, address in places]
    invoice_services.billing_run(month=date(2026, 1, 1), now=at(2026, 2, 1, 2))
    rates = [Invoice.unscoped_objects.get(organization=org).tax_rate_percent for org in orgs]
    assert rates == [Decimal("7.25"), Decimal("5"), Decimal("13"), Decimal("0")]


def test_the_database_refuses_a_charge_twice():
    sub = subscription()
    [invoice] = run(sub.organization, date(2026, 1, 1))
    line = lines(invoice)[0]
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.bulk_create([InvoiceLine(
            organization=sub.organization, invoice=invoice, position=9, kind="charge", charge_key=line.charge_key,
            description="again", quantity=1, unit_price=Decimal("1"), amount=Decimal("1"))])


def test_an_issued_invoice_cannot_be_edited_or_deleted():
    sub = subscription()
    [invoice] = run(sub.organization, date(2026, 1, 1))
    invoice.total = Decimal("1.00")
    with pytest.raises(ImmutableError):
        invoice.save()
    with pytest.raises(ImmutableError):
        invoice.delete()
    line = lines(invoice)[0]
    line.amount = Decimal("0.01")
    with pytest.raises(ImmutableError):
        line.save()
    with pytest.raises(ImmutableError):
        line.delete()
    invoice.refresh_from_db()
    assert invoice.total == Decimal("300.00")


def test_a_correction_is_a_credit_note_that_nets_to_zero_and_voids_the_invoice():
    sub = subscription()
    SeatBatchFactory(subscription=sub, source=SeatBatch.Source.ADDITION, quantity=1, added_at=at(2026, 1, 20))
    TaxRate.objects.create(country="US", rate_percent=Decimal("7"), name="Tax", effective_from=date(2020, 1, 1))
    [invoice] = run(sub.organization, date(2026, 1, 1))
    with pytest.raises(ValidationError):
        invoice_services.invoice_credit_in_full(invoice=invoice, actor=Actor.system("t"), reason=" ")
    note = invoice_services.invoice_credit_in_full(invoice=invoice, actor=Actor.system("t"), reason="Wrong price",
                                                   now=at(2026, 2, 3))
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.VOID
    assert note.credited_invoice == invoice and invoice.total + note.total == 0
    with pytest.raises(ValidationError):
        invoice_services.invoice_credit_in_full(invoice=invoice, actor=Actor.system("t"), reason="again")


def test_overdue_marking_moves_only_the_status():
    sub = subscription()
    [invoice] = run(sub.organization, date(2026, 1, 1))
    assert invoice_services.invoices_mark_overdue(organization=sub.organization, now=at(2026, 3, 15)) == 1
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.OVERDUE and invoice.total == Decimal("300.00")


def test_reminders_go_out_once_per_configured_offset(settings, django_capture_on_commit_callbacks):
    from django.core import mail

    from billing.models import DunningReminder

    settings.BILLING_DUNNING_OFFSETS_DAYS = (3, 10)
    sub = subscription()
    [invoice] = run(sub.organization, date(2026, 1, 1))  # issued 1 Feb, due 3 Mar
    billing_profile_update(organization=sub.organization, actor=Actor.system("t"),
                           contacts=[{"name": "AP", "email": "ap@example.com"}])
    send = invoice_services.invoices_send_reminders
    with django_capture_on_commit_callbacks(execute=True):
        assert send(organization=sub.organization, now=at(2026, 3, 5)) == 0  # 2 days late: not yet
        assert send(organization=sub.organization, now=at(2026, 3, 6)) == 1
        assert send(organization=sub.organization, now=at(2026, 3, 7)) == 0  # the 3-day reminder went out
        assert send(organization=sub.organization, now=at(2026, 4, 1)) == 1  # the 10-day one
        assert send(organization=sub.organization, now=at(2026, 4, 2)) == 0
    assert sorted(DunningReminder.objects.for_org(sub.organization).values_list("offset_days", flat=True)) == [3, 10]
    assert [m.subject for m in mail.outbox] == [f"Reminder: invoice {invoice.number} is overdue"] * 2
