"""Payment methods and payments: cards through the gateway, bank transfers recorded by staff.

Only the processor's token is stored (encrypted), with brand, last 4 digits and expiry. Paying is
idempotent per key: a retried or double-clicked payment finds the first (``payment_idempotent``),
and the processor's charge id is derived from the same key, so the card is charged once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.gateway import GatewayError, gateway
from billing.models import Invoice, Payment, PaymentMethod
from core.audit import Actor, audit_record
from core.tenancy import tenant_context

PAYABLE = (Invoice.Status.OPEN, Invoice.Status.OVERDUE)


class PaymentError(ValidationError):
    pass


@transaction.atomic
def payment_method_add(*, organization, actor: Actor, user, token: str, make_default: bool = True) -> PaymentMethod:
    processor = gateway()
    try:
        card = processor.describe(token)
    except GatewayError as exc:
        raise PaymentError(str(exc), code=exc.code) from None
    if card.expired(timezone.now().astimezone(UTC).date()):
        raise PaymentError("This card has expired. Add a card that is still valid.", code="card_expired")
    with tenant_context(organization):
        methods = PaymentMethod.objects.for_org(organization).filter(removed_at=None)
        make_default = make_default or not methods.exists()
        if make_default:
            methods.filter(is_default=True).update(is_default=False)
        method = PaymentMethod(organization=organization, gateway=processor.name, token=token, brand=card.brand,
                               last4=card.last4, exp_month=card.exp_month, exp_year=card.exp_year,
                               is_default=make_default, added_by=user)
        method.full_clean()
        method.save()
        audit_record(actor=actor, action="billing.payment_method_added", organization=organization, target=method,
                     metadata={"brand": card.brand, "last4": card.last4})
    return method


@transaction.atomic
def payment_method_remove(*, organization, actor: Actor, method: PaymentMethod) -> None:
    """Removed methods are kept (payments name them) but never used or shown again."""
    with tenant_context(organization):
        updated = PaymentMethod.objects.for_org(organization).filter(pk=method.pk, removed_at=None).update(
            removed_at=timezone.now(), is_default=False)
        if updated:
            audit_record(actor=actor, action="billing.payment_method_removed", organization=organization,
                         target=method, metadata={"brand": method.brand, "last4": method.last4})


def _mark_paid(invoice: Invoice, when: datetime) -> None:
    invoice.status = Invoice.Status.PAID
    invoice.paid_at = when
    invoice.save(update_fields=["status", "paid_at", "updated_at"])


def _locked_payable(organization, invoice_id) -> Invoice:
    invoice = Invoice.objects.for_org(organization).select_for_update().get(pk=invoice_id)
    if invoice.kind != Invoice.Kind.INVOICE or invoice.status not in PAYABLE:
        raise PaymentError(f"Invoice {invoice.number} is {invoice.get_status_display().lower()}: nothing to pay.",
                           code="not_payable")
    return invoice


def invoice_pay_by_card(*, organization, actor: Actor, user, invoice: Invoice, method: PaymentMethod,
                        idempotency_key: str) -> Payment:
    """Charge the invoice's total to a saved card. A decline raises and writes nothing."""
    if not idempotency_key:
        raise PaymentError("A payment needs an idempotency key.", code="idempotency_key_required")
    try:
        with tenant_context(organization):
            existing = Payment.objects.for_org(organization).filter(idempotency_key=idempotency_key).first()
            if existing is not None:
                return existing
            invoice = _locked_payable(organization, invoice.pk)
            method = PaymentMethod.objects.for_org(organization).filter(pk=method.pk, removed_at=None).first()
            if method is None:
                raise PaymentError("This card was removed. Choose another one.", code="payment_method_removed")
            try:
                charge_id = gateway().charge(token=method.token, amount=invoice.total, currency=invoice.currency,
                                             idempotency_key=f"{organization.pk}:{idempotency_key}")
            except GatewayError as exc:
                raise PaymentError(str(exc), code=exc.code) from None
            now = timezone.now()
            payment = Payment(organization=organization, invoice=invoice, method=Payment.Method.CARD,
                              payment_method=method, amount=invoice.total, currency=invoice.currency,
                              reference=charge_id, received_at=now, recorded_by=user, idempotency_key=idempotency_key)
            payment.full_clean()
            payment.save()
            _mark_paid(invoice, now)
            audit_record(actor=actor, action="billing.invoice_paid", organization=organization, target=invoice,
                         metadata={"method": "card", "amount": str(payment.amount), "reference": charge_id,
                                   "card": f"{method.brand} {method.last4}"})
            return payment
    except IntegrityError:
        # A racing request with the same key won: return its payment.
        with tenant_context(organization):
            return Payment.objects.for_org(organization).get(idempotency_key=idempotency_key)


def payment_record_bank_transfer(*, organization, actor: Actor, user, invoice: Invoice, amount: Decimal,
                                 reference: str, received_at: datetime | None = None) -> Payment:
    """Staff record a transfer that paid an invoice in full (partial payments: not yet)."""
    reference = (reference or "").strip()
    if not reference:
        raise PaymentError({"reference": "Give the bank's reference for the transfer."})
    with tenant_context(organization):
        invoice = _locked_payable(organization, invoice.pk)
        if amount != invoice.total:
            raise PaymentError({"amount": f"The transfer must match the invoice total, {invoice.currency} "
                                          f"{invoice.total}; partial payments are not supported yet."})
        received_at = received_at or timezone.now()
        payment = Payment(organization=organization, invoice=invoice, method=Payment.Method.BANK_TRANSFER,
                          amount=amount, currency=invoice.currency, reference=reference[:100],
                          received_at=received_at, recorded_by=user, idempotency_key=f"transfer:{invoice.pk}")
        payment.full_clean()
        payment.save()
        _mark_paid(invoice, received_at)
        audit_record(actor=actor, action="billing.invoice_paid", organization=organization, target=invoice,
                     metadata={"method": "bank_transfer", "amount": str(amount), "reference": reference[:100]})
        return payment
