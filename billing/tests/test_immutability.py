"""Issued documents are immutable in the database itself: raw SQL cannot change or delete an issued
invoice or line, while what moves after issue (payment status, overdue, void, e-mailed, key rotation)
still moves."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from billing.models import Invoice, InvoiceLine
from billing.services import invoices as invoice_services
from billing.services import payments as payment_services
from core.audit import Actor
from core.immutable import retention_purge_deletes
from licensing import nce
from licensing.tests.core.factories import SeatBatchFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db
START = datetime(2026, 1, 15, 10, tzinfo=UTC)
postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'",
                                   reason="deletes are guarded on Postgres only (Django's SQLite flush deletes)")


def issued_invoice() -> Invoice:
    sub = SubscriptionFactory(unit_price=Decimal("30.00"), quantity=10, start_date=START,
                              commitment_end=nce.term_end(START, "P1Y"),
                              cancellation_allowed_until=START + timedelta(days=7))
    SeatBatchFactory(subscription=sub, quantity=10, added_at=START)
    [invoice] = invoice_services.billing_run_organization(organization=sub.organization, month=date(2026, 1, 1),
                                                         now=datetime(2026, 2, 1, tzinfo=UTC))
    return invoice


def raw(sql: str, params=()) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def first_line(invoice) -> InvoiceLine:
    return InvoiceLine.unscoped_objects.filter(invoice=invoice).order_by("position").first()


def test_raw_sql_cannot_change_an_issued_line_or_invoice():
    invoice = issued_invoice()
    line = first_line(invoice)
    with pytest.raises(IntegrityError):
        raw("UPDATE billing_invoiceline SET amount = 1 WHERE id = %s", [_id(line)])
    with pytest.raises(IntegrityError):
        raw("UPDATE billing_invoice SET total = 1, subtotal = 1 WHERE id = %s", [_id(invoice)])
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.unscoped_objects.filter(pk=invoice.pk).update(due_on=date(2030, 1, 1))
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.unscoped_objects.filter(invoice=invoice).update(description="Something else")
    line.refresh_from_db()
    invoice.refresh_from_db()
    assert (line.amount, invoice.total, invoice.due_on) == (Decimal("300.00"), Decimal("300.00"), date(2026, 3, 3))


@postgres_only
def test_raw_sql_cannot_delete_an_issued_invoice_or_line_but_the_retention_purge_can():
    invoice = issued_invoice()
    with pytest.raises(IntegrityError):
        raw("DELETE FROM billing_invoiceline WHERE invoice_id = %s", [invoice.pk])
    with pytest.raises(IntegrityError):
        raw("DELETE FROM billing_invoice WHERE id = %s", [invoice.pk])
    assert InvoiceLine.unscoped_objects.filter(invoice=invoice).count() == 2
    with retention_purge_deletes():
        Invoice.unscoped_objects.filter(pk=invoice.pk).delete()
    assert not Invoice.unscoped_objects.exists() and not InvoiceLine.unscoped_objects.exists()
    # The purge's permission ended with its transaction.
    again = issued_invoice()
    with pytest.raises(IntegrityError):
        raw("DELETE FROM billing_invoice WHERE id = %s", [again.pk])


def test_what_moves_after_issue_still_moves():
    invoice = issued_invoice()
    org = invoice.organization
    assert invoice_services.invoices_mark_overdue(organization=org, now=datetime(2026, 4, 1, tzinfo=UTC)) == 1
    raw("UPDATE billing_invoice SET emailed_at = %s WHERE id = %s", [datetime(2026, 2, 1, tzinfo=UTC), _id(invoice)])
    payment_services.payment_record_bank_transfer(organization=org, actor=Actor.system("t"), user=None,
                                                  invoice=invoice, amount=Decimal("300.00"), reference="BANK-1")
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and invoice.emailed_at is not None
    note = invoice_services.invoice_credit_in_full(invoice=invoice, actor=Actor.system("t"), reason="Wrong seats",
                                                   now=datetime(2026, 4, 2, tzinfo=UTC))
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.VOID
    # Void is final, and a credit note has no payment status to move.
    with pytest.raises(IntegrityError):
        raw("UPDATE billing_invoice SET status = 'open' WHERE id = %s", [_id(invoice)])
    with pytest.raises(IntegrityError):
        raw("UPDATE billing_invoice SET status = 'open' WHERE id = %s", [_id(note)])


def test_encrypted_columns_may_be_re_encrypted_under_a_new_key_but_not_rewritten():
    invoice = issued_invoice()
    stored = Invoice.unscoped_objects.filter(pk=invoice.pk).values_list("bill_to_name", "bill_to_tax_id").get()
    # Another ciphertext under the same key (the tax id's, moved into the name) is a rewrite: refused.
    with pytest.raises(IntegrityError):
        raw("UPDATE billing_invoice SET bill_to_name = bill_to_tax_id WHERE id = %s", [_id(invoice)])
    call_command("reencrypt_fields", "--model", "billing.Invoice", stdout=_Null())
    rotated = Invoice.unscoped_objects.filter(pk=invoice.pk).values_list("bill_to_name", "bill_to_tax_id").get()
    assert rotated[0] != stored[0] and rotated[0][:35] != stored[0][:35]
    assert Invoice.unscoped_objects.get(pk=invoice.pk).bill_to_name == invoice.bill_to_name


def _sqlite() -> bool:
    return connection.vendor == "sqlite"


def _id(invoice):
    return invoice.pk.hex if _sqlite() else invoice.pk


class _Null:
    def write(self, *_):
        pass
