"""Invoices and credit notes, their lines, tax rates and the gap-free number sequence.

Invariants held here (the billing run in services/invoices.py relies on them):
- A charge is billed once: every line carries a ``charge_key`` unique per organisation, so a second
  run, or two racing runs, cannot put the same charge on two documents.
- One run document per organisation, kind, billed month and currency (``run_once_per_month``).
- An issued document is immutable: lines cannot be saved again or deleted, and an invoice's money,
  numbers and customer details cannot change; only its payment status (and when it was e-mailed)
  moves. Corrections are credit notes. The database holds the same rule with triggers, so raw SQL
  cannot bypass it either (billing/immutability.py, docs/decisions/029-immutable-billing-documents.md).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from core.fields import EncryptedCharField, EncryptedJSONField
from core.models import BaseModel, TenantModel
from core.registry import Category, Personal, Retention, Subject, declare


class TaxRate(BaseModel):
    """A tax rate per jurisdiction (country, optionally a region) from a UTC day on."""

    country = models.CharField(max_length=2)
    region = models.CharField(max_length=32, blank=True)
    name = models.CharField(max_length=40, default="VAT")
    rate_percent = models.DecimalField(max_digits=5, decimal_places=2,
                                       validators=[MinValueValidator(0), MaxValueValidator(50)])
    effective_from = models.DateField()
    effective_to = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["country", "region", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["country", "region", "effective_from"], name="tax_rate_once_per_start"),
        ]

    def __str__(self):
        place = f"{self.country}-{self.region}" if self.region else self.country
        return f"{place} {self.name} {self.rate_percent}% from {self.effective_from}"


declare(TaxRate, not_personal=["country", "region", "name", "rate_percent", "effective_from", "effective_to"])


class InvoiceSequence(BaseModel):
    """The last number given per year and kind. Taken under a row lock inside the issuing transaction,
    so a number is used only if its document commits: sequential, no gaps."""

    year = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=16)
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["year", "kind"], name="invoice_sequence_per_year_kind")]

    def __str__(self):
        return f"{self.kind} {self.year}: {self.last}"


declare(InvoiceSequence, not_personal=["year", "kind", "last"])


class ImmutableError(ValidationError):
    pass


class Invoice(TenantModel):
    class Kind(models.TextChoices):
        INVOICE = "invoice", "Invoice"
        CREDIT_NOTE = "credit_note", "Credit note"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        PARTIALLY_PAID = "partially_paid", "Partially paid"
        PAID = "paid", "Paid"
        OVERDUE = "overdue", "Overdue"
        VOID = "void", "Void"

    # What may change after issue: the payment status, the amount paid and when it was paid (the database's
    # triggers hold the same list: billing/immutability.py).
    MUTABLE_FIELDS = frozenset({"status", "amount_paid", "paid_at", "emailed_at", "updated_at"})

    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.INVOICE)
    number = models.CharField(max_length=32, unique=True)
    sequence_year = models.PositiveSmallIntegerField()
    sequence_number = models.PositiveIntegerField()
    # The month a billing run issued this for (first day); null for a correction issued by hand.
    run_period = models.DateField(null=True, blank=True)
    currency = models.CharField(max_length=3)
    subtotal = models.DecimalField(max_digits=14, decimal_places=2)
    tax_total = models.DecimalField(max_digits=14, decimal_places=2)
    total = models.DecimalField(max_digits=14, decimal_places=2)
    tax_name = models.CharField(max_length=40, blank=True)
    tax_rate_percent = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    tax_note = models.CharField(max_length=200, blank=True)
    issued_at = models.DateTimeField(db_index=True)
    due_on = models.DateField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    # Payments less refunds (billing/services/payments.py keeps it, under the invoice's row lock).
    amount_paid = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    paid_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    credited_invoice = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True,
                                         related_name="credit_notes")
    reason = models.CharField(max_length=300, blank=True)
    # The customer as billed, frozen at issue (the organisation may change later).
    bill_to_name = EncryptedCharField(max_length=200)
    bill_to_country = models.CharField(max_length=2, blank=True)
    bill_to_address = EncryptedJSONField(null=True, blank=True)
    bill_to_tax_id = EncryptedCharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-issued_at", "-sequence_number"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "kind", "run_period", "currency"],
                                    condition=Q(run_period__isnull=False), name="run_once_per_month"),
            models.UniqueConstraint(fields=["kind", "sequence_year", "sequence_number"],
                                    name="invoice_number_once"),
            models.CheckConstraint(condition=Q(kind="credit_note") | Q(total__gte=0), name="invoice_not_negative"),
            models.CheckConstraint(condition=Q(kind="invoice") | Q(total__lte=0), name="credit_note_not_positive"),
            # Never overpaid, never negative: an overpayment is refused, not kept as credit.
            models.CheckConstraint(condition=Q(amount_paid__gte=0) & (Q(kind="credit_note") | Q(
                amount_paid__lte=models.F("total"))), name="invoice_paid_within_total"),
        ]
        indexes = [models.Index(fields=["organization", "issued_at"], name="invoice_org_issued_idx")]

    def __str__(self):
        return self.number

    @property
    def is_credit_note(self) -> bool:
        return self.kind == self.Kind.CREDIT_NOTE

    @property
    def balance(self):
        """What is still to pay: nothing on a credit note or a void invoice."""
        if self.is_credit_note or self.status == self.Status.VOID:
            return self.total - self.total
        return self.total - self.amount_paid

    def save(self, *args, update_fields=None, **kwargs):
        if not self._state.adding and (update_fields is None or not set(update_fields) <= self.MUTABLE_FIELDS):
            raise ImmutableError("An issued invoice cannot be edited; issue a credit note to correct it.",
                                 code="invoice_immutable")
        super().save(*args, update_fields=update_fields, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableError("An issued invoice cannot be deleted; issue a credit note to correct it.",
                             code="invoice_immutable")


declare(
    Invoice,
    subject=Subject.ORGANIZATION,
    subject_lookup="organization",
    personal={
        "bill_to_name": Personal(Category.BILLING, Retention.BILLING_RECORD),
        "bill_to_address": Personal(Category.BILLING, Retention.BILLING_RECORD),
        "bill_to_tax_id": Personal(Category.BILLING, Retention.BILLING_RECORD),
    },
    not_personal=[
        "kind", "number", "sequence_year", "sequence_number", "run_period", "currency", "subtotal", "tax_total",
        "total", "tax_name", "tax_rate_percent", "tax_note", "issued_at", "due_on", "status", "amount_paid", "paid_at",
        "emailed_at",
        "credited_invoice", "reason", "bill_to_country",
    ],
)


class InvoiceLine(TenantModel):
    class Kind(models.TextChoices):
        CHARGE = "charge", "Subscription charge"
        PRORATION = "proration", "Seats added mid-period"
        CONSUMPTION = "consumption", "Azure consumption"
        REFUND = "refund", "Refund"
        CORRECTION = "correction", "Correction"
        TAX = "tax", "Tax"

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # What was billed, once per organisation: "charge:<subscription>:<period start>", "refund:<batch>:<seats>"...
    charge_key = models.CharField(max_length=200)
    subscription = models.ForeignKey("licensing.Subscription", on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="+")
    ms_subscription_id = models.CharField(max_length=64, blank=True)
    description = models.CharField(max_length=300)
    explanation = models.TextField(blank=True)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    quantity = models.IntegerField(validators=[MinValueValidator(0)])
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    amount = models.DecimalField(max_digits=14, decimal_places=2)

    class Meta:
        ordering = ["invoice", "position"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "charge_key"], name="charge_billed_once"),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="invoice_line_quantity_not_negative"),
        ]

    def __str__(self):
        return f"{self.description}: {self.amount}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableError("Lines of an issued invoice cannot be edited.", code="invoice_immutable")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableError("Lines of an issued invoice cannot be deleted.", code="invoice_immutable")


declare(
    InvoiceLine,
    not_personal=[
        "invoice", "position", "kind", "charge_key", "subscription", "ms_subscription_id", "description",
        "explanation", "period_start", "period_end", "quantity", "unit_price", "amount",
    ],
)


class DunningReminder(TenantModel):
    """A payment reminder sent for an invoice at one of the configured offsets after its due date;
    the unique constraint sends each reminder once, however often the job runs."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="reminders")
    offset_days = models.PositiveSmallIntegerField()
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ["invoice", "offset_days"]
        constraints = [models.UniqueConstraint(fields=["invoice", "offset_days"], name="reminder_once_per_offset")]

    def __str__(self):
        return f"Reminder {self.offset_days} days after due for {self.invoice_id}"


declare(DunningReminder, not_personal=["invoice", "offset_days", "sent_at"])
