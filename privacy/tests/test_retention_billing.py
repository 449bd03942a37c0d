"""Issued invoices are immutable in the database (billing/immutability.py), yet the retention purge
still deletes them, with their lines, payments and credit notes, once the legal period after the
relationship ended has passed; and nothing sooner."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
import time_machine

from accounts.tests.factories import OrganizationFactory
from billing.models import Invoice, InvoiceLine, Payment
from billing.services import invoices as invoice_services
from billing.services import payments as payment_services
from core.audit import Actor
from core.tenancy import tenant_context
from licensing import nce
from licensing.models import Subscription
from licensing.tests.core.factories import SeatBatchFactory, SubscriptionFactory
from privacy.services.retention import retention_purge

pytestmark = pytest.mark.django_db
NOW = datetime.datetime(2026, 12, 7, 2, 0, tzinfo=datetime.UTC)
START = datetime.datetime(2018, 1, 15, 10, tzinfo=datetime.UTC)
ACTOR = Actor.system("test")


def _billed_customer(*, ended_days_ago: int):
    """Two months billed in 2018, the first paid by transfer and then credited; the last subscription ended
    ``ended_days_ago`` before now."""
    org = OrganizationFactory()
    sub = SubscriptionFactory(organization=org, unit_price=Decimal("30.00"), quantity=2, start_date=START,
                              commitment_end=nce.term_end(START, "P1Y"))
    SeatBatchFactory(subscription=sub, quantity=2, added_at=START)
    for month in (1, 2):
        invoice_services.billing_run_organization(organization=org, month=datetime.date(2018, month, 1),
                                                  now=datetime.datetime(2018, month + 1, 1, tzinfo=datetime.UTC))
    with tenant_context(org):
        first = Invoice.objects.for_org(org).order_by("issued_at").first()
    payment_services.payment_record_bank_transfer(organization=org, actor=ACTOR, user=None, invoice=first,
                                                  amount=first.total, reference="BANK-2018")
    invoice_services.invoice_credit_in_full(invoice=first, actor=ACTOR, reason="Wrong seats",
                                            now=datetime.datetime(2018, 3, 5, tzinfo=datetime.UTC))
    with tenant_context(org):
        Subscription.objects.for_org(org).filter(pk=sub.pk).update(
            status=Subscription.Status.DELETED, updated_at=NOW - datetime.timedelta(days=ended_days_ago))
    return org


def _left(org):
    with tenant_context(org):
        return tuple(model.objects.for_org(org).count() for model in (Invoice, InvoiceLine, Payment))


@time_machine.travel(NOW, tick=False)
def test_the_purge_deletes_issued_billing_records_only_after_the_legal_period():
    kept = _billed_customer(ended_days_ago=6 * 365)
    gone = _billed_customer(ended_days_ago=7 * 365 + 1)
    before = _left(kept)
    assert before == (3, 6, 1)  # two invoices and a credit note, a charge and a tax line each; one payment
    run = retention_purge()
    assert _left(gone) == (0, 0, 0)
    assert _left(kept) == before
    assert run.counts["billing.invoice"] == 3
    assert not retention_purge().counts.get("billing.invoice")  # a second run removes nothing
