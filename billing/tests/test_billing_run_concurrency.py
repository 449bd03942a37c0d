"""Billing runs racing on real connections (Postgres row locks): every charge is billed once, numbers
stay gap-free, and no run dies of a deadlock between the number sequences and the audit chain's head."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections

from accounts.tests.factories import OrganizationFactory
from billing.models import Invoice, InvoiceLine, InvoiceSequence
from billing.services import invoices as invoice_services
from core.audit import Actor, audit_record, verify_chain
from licensing import nce
from licensing.models import SeatBatch
from licensing.tests.core.factories import SeatBatchFactory, SubscriptionFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks under concurrency need PostgreSQL"),
]

JANUARY, NOW = date(2026, 1, 1), datetime(2026, 2, 1, 2, tzinfo=UTC)
START = datetime(2026, 1, 15, 10, tzinfo=UTC)


def organization(*, with_refund: bool):
    """An organisation owing January's charge; with a refund, it also gets a credit note."""
    org = OrganizationFactory()
    sub = SubscriptionFactory(organization=org, billing_cycle="monthly", term_duration="P1Y", quantity=10,
                              unit_price=Decimal("30.00"), start_date=START, commitment_end=nce.term_end(START, "P1Y"),
                              cancellation_allowed_until=START + timedelta(days=7))
    SeatBatchFactory(subscription=sub, quantity=10, added_at=START)
    if with_refund:
        removed = datetime(2026, 1, 22, 15, tzinfo=UTC)
        SeatBatchFactory(subscription=sub, source=SeatBatch.Source.ADDITION, quantity=4, refunded=4,
                         added_at=datetime(2026, 1, 20, 9, tzinfo=UTC), refundable_until=removed)
    return org


def race(calls) -> list[str]:
    barrier = threading.Barrier(len(calls))
    outcomes: list[str] = []

    def run(call):
        try:
            barrier.wait()
            call()
            outcomes.append("done")
        except Exception as exc:  # surfaced by the assertion on outcomes
            outcomes.append(f"error: {exc!r}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.parametrize("first_of_the_year", [True, False])
def test_racing_runs_bill_each_organisation_once_with_gap_free_numbers(first_of_the_year, monkeypatch):
    monkeypatch.setattr(invoice_services, "RUN_BATCH", 5)  # several batches, the last one short
    orgs = [organization(with_refund=n % 2 == 0) for n in range(12)]
    if not first_of_the_year:  # the year's sequences and the audit chain's head exist: only row locks race
        for kind in Invoice.Kind.values:
            InvoiceSequence.objects.create(year=2026, kind=kind, last=0)
        audit_record(actor=Actor.system("test"), action="test.before_the_run")

    def whole_run():
        invoice_services.billing_run(month=JANUARY, now=NOW)

    def one_by_one_backwards():
        # Meets the whole run half-way, so the two work on different organisations at the same time:
        # one issuing an invoice and a credit note while the other issues an invoice alone.
        for org in sorted(orgs, key=lambda o: o.pk, reverse=True):
            invoice_services.billing_run_organization(organization=org, month=JANUARY, now=NOW)

    assert race([whole_run, whole_run, one_by_one_backwards]) == ["done"] * 3
    invoices = Invoice.unscoped_objects.filter(kind=Invoice.Kind.INVOICE)
    credit_notes = Invoice.unscoped_objects.filter(kind=Invoice.Kind.CREDIT_NOTE)
    assert sorted(invoices.values_list("organization_id", flat=True)) == sorted(o.pk for o in orgs)
    assert credit_notes.count() == 6
    assert sorted(invoices.values_list("sequence_number", flat=True)) == list(range(1, 13))
    assert sorted(credit_notes.values_list("sequence_number", flat=True)) == list(range(1, 7))
    keys = list(InvoiceLine.unscoped_objects.values_list("organization_id", "charge_key"))
    assert len(keys) == len(set(keys))
    assert list(verify_chain()) == []
