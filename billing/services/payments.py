"""Payment methods, payments and refunds: cards through the gateway, bank transfers recorded by staff.

Only the processor's token is stored (encrypted), with brand, last 4 digits and expiry. Paying is
idempotent per key: a retried or double-clicked payment finds the first (``payment_idempotent``),
and the processor's charge id is derived from the same key, so the card is charged once.

An invoice is paid in as many parts as the customer likes; ``Invoice.amount_paid`` (payments less
refunds) moves under the invoice's row lock with its status (open, partially paid, paid, overdue),
and the database refuses more than the total (``invoice_paid_within_total``). A refund gives back
all or part of one payment and reopens that much of the balance.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from billing.gateway import GatewayError, gateway
from billing.models import Invoice, Payment, PaymentMethod, Refund
from billing.money import ZERO, parse_amount, round_line, validate_currency
from core.audit import Actor, audit_record
from core.tenancy import tenant_context

PAYABLE = (Invoice.Status.OPEN, Invoice.Status.PARTIALLY_PAID, Invoice.Status.OVERDUE)


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


def _settled_status(invoice: Invoice, today) -> str:
    """The payment status the paid amount gives: void stays void; past due with a balance is overdue."""
    if invoice.status == Invoice.Status.VOID:
        return Invoice.Status.VOID
    if invoice.amount_paid >= invoice.total:
        return Invoice.Status.PAID
    if invoice.due_on < today:
        return Invoice.Status.OVERDUE
    return Invoice.Status.PARTIALLY_PAID if invoice.amount_paid > 0 else Invoice.Status.OPEN


def _apply(invoice: Invoice, change: Decimal, when: datetime) -> None:
    """Move the paid amount (a payment adds, a refund takes away) and the status it gives."""
    invoice.amount_paid += change
    invoice.status = _settled_status(invoice, when.astimezone(UTC).date())
    invoice.paid_at = (invoice.paid_at or when) if invoice.status == Invoice.Status.PAID else None
    invoice.save(update_fields=["amount_paid", "status", "paid_at", "updated_at"])


def _locked_payable(organization, invoice_id) -> Invoice:
    invoice = Invoice.objects.for_org(organization).select_for_update().get(pk=invoice_id)
    if invoice.kind != Invoice.Kind.INVOICE or invoice.status not in PAYABLE:
        raise PaymentError(f"Invoice {invoice.number} is {invoice.get_status_display().lower()}: nothing to pay.",
                           code="not_payable")
    return invoice


def _check_key(key: str, what: str) -> None:
    if not key:
        raise PaymentError(f"{what} needs an idempotency key.", code="idempotency_key_required")
    if not key.isprintable():
        raise PaymentError(f"{what}'s idempotency key has characters it cannot have; reload the page and try again.",
                           code="invalid_idempotency_key")


def _checked_amount(amount, *, currency: str | None, expected_currency: str, most: Decimal, what: str) -> Decimal:
    """A positive amount in cents, in the document's currency, at most ``most`` (None: all of it)."""
    if currency is not None and currency != expected_currency:
        validate_currency(currency)  # an unknown code says so before the mismatch does
        raise PaymentError(f"This is in {expected_currency}; {currency} cannot be used for it.",
                           code="currency_mismatch")
    if amount is None or amount == "":
        return most
    value = parse_amount(amount)
    if value <= 0:
        raise PaymentError("The amount must be more than zero.", code="invalid_amount")
    if value != round_line(value):
        raise PaymentError("The amount has at most two decimals (cents).", code="invalid_amount")
    if value > most:
        raise PaymentError(f"{expected_currency} {value} is more than the {expected_currency} {most} {what}. "
                           "Enter at most that.", code="overpayment")
    return value


def invoice_pay_by_card(*, organization, actor: Actor, user, invoice: Invoice, method: PaymentMethod,
                        idempotency_key: str, amount=None, currency: str | None = None) -> Payment:
    """Charge the invoice's balance, or ``amount`` of it, to a saved card. A decline raises and writes nothing;
    more than the balance is refused."""
    _check_key(idempotency_key, "A payment")
    try:
        with tenant_context(organization):
            existing = Payment.objects.for_org(organization).filter(idempotency_key=idempotency_key).first()
            if existing is not None:
                return existing
            invoice = _locked_payable(organization, invoice.pk)
            amount = _checked_amount(amount, currency=currency, expected_currency=invoice.currency,
                                     most=invoice.balance, what=f"still due on {invoice.number}")
            method = PaymentMethod.objects.for_org(organization).filter(pk=method.pk, removed_at=None).first()
            if method is None:
                raise PaymentError("This card was removed. Choose another one.", code="payment_method_removed")
            try:
                charge_id = gateway().charge(token=method.token, amount=amount, currency=invoice.currency,
                                             idempotency_key=f"{organization.pk}:{idempotency_key}")
            except GatewayError as exc:
                raise PaymentError(str(exc), code=exc.code) from None
            now = timezone.now()
            payment = Payment(organization=organization, invoice=invoice, method=Payment.Method.CARD,
                              payment_method=method, amount=amount, currency=invoice.currency,
                              reference=charge_id, received_at=now, recorded_by=user, idempotency_key=idempotency_key)
            payment.full_clean()
            payment.save()
            _apply(invoice, amount, now)
            audit_record(actor=actor, action="billing.invoice_paid", organization=organization, target=invoice,
                         metadata={"method": "card", "amount": str(payment.amount), "reference": charge_id,
                                   "card": f"{method.brand} {method.last4}", "balance": str(invoice.balance),
                                   "status": invoice.status})
            return payment
    except IntegrityError:
        # A racing request with the same key won: return its payment.
        with tenant_context(organization):
            return Payment.objects.for_org(organization).get(idempotency_key=idempotency_key)


def payment_record_bank_transfer(*, organization, actor: Actor, user, invoice: Invoice, amount,
                                 reference: str, received_at: datetime | None = None,
                                 currency: str | None = None) -> Payment:
    """Staff record a transfer that paid the invoice, in full or in part. The bank's reference names the
    transfer: recording the same reference for the same invoice again finds the first."""
    reference = (reference or "").strip()[:100]
    if not reference:
        raise PaymentError({"reference": "Give the bank's reference for the transfer."})
    if amount is None or amount == "":
        raise PaymentError("Give the amount the bank received.", code="invalid_amount")
    key = f"transfer:{invoice.pk}:{reference}"[:128]
    with tenant_context(organization):
        existing = Payment.objects.for_org(organization).filter(idempotency_key=key).first()
        if existing is not None:
            return existing
        invoice = _locked_payable(organization, invoice.pk)
        amount = _checked_amount(amount, currency=currency, expected_currency=invoice.currency,
                                 most=invoice.balance, what=f"still due on {invoice.number}")
        received_at = received_at or timezone.now()
        payment = Payment(organization=organization, invoice=invoice, method=Payment.Method.BANK_TRANSFER,
                          amount=amount, currency=invoice.currency, reference=reference,
                          received_at=received_at, recorded_by=user, idempotency_key=key)
        payment.full_clean()
        payment.save()
        _apply(invoice, amount, received_at)
        audit_record(actor=actor, action="billing.invoice_paid", organization=organization, target=invoice,
                     metadata={"method": "bank_transfer", "amount": str(amount), "reference": reference,
                               "balance": str(invoice.balance), "status": invoice.status})
        return payment


def payment_refund(*, organization, actor: Actor, user, payment: Payment, reason: str, idempotency_key: str,
                   amount=None, currency: str | None = None, reference: str = "") -> Refund:
    """Give back all or part of a payment: a card's through the gateway, a transfer's by the bank (staff give
    its reference). The invoice's balance grows by the refund. A gateway refusal raises and writes nothing."""
    reason = (reason or "").strip()[:300]
    if not reason:
        raise PaymentError({"reason": "Say why the money is refunded; the customer sees it."})
    _check_key(idempotency_key, "A refund")
    with tenant_context(organization):
        existing = Refund.objects.for_org(organization).filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
        # The invoice's lock serialises every payment and refund of it (the same lock paying takes).
        invoice = Invoice.objects.for_org(organization).select_for_update().get(pk=payment.invoice_id)
        payment = Payment.objects.for_org(organization).get(pk=payment.pk)
        refunded = Refund.objects.for_org(organization).filter(payment=payment).aggregate(s=Sum("amount"))["s"] or ZERO
        refundable = payment.amount - refunded
        if refundable <= 0:
            raise PaymentError(f"This payment of {payment.currency} {payment.amount} was refunded in full already.",
                               code="already_refunded")
        amount = _checked_amount(amount, currency=currency, expected_currency=payment.currency, most=refundable,
                                 what="left to refund on this payment")
        now = timezone.now()
        if payment.method == Payment.Method.CARD:
            try:
                reference = gateway().refund(charge_id=payment.reference, amount=amount, currency=payment.currency,
                                             idempotency_key=f"{organization.pk}:{idempotency_key}")
            except GatewayError as exc:
                raise PaymentError(str(exc), code=exc.code) from None
        else:
            reference = (reference or "").strip()[:100]
            if not reference:
                raise PaymentError({"reference": "Give the bank's reference for the money sent back."})
        refund = Refund(organization=organization, invoice=invoice, payment=payment, amount=amount,
                        currency=payment.currency, reference=reference, reason=reason, refunded_at=now,
                        recorded_by=user, idempotency_key=idempotency_key)
        refund.full_clean()
        refund.save()
        _apply(invoice, -amount, now)
        audit_record(actor=actor, action="billing.payment_refunded", organization=organization, target=invoice,
                     metadata={"payment": str(payment.pk), "method": payment.method, "amount": str(amount),
                               "reference": reference, "reason": reason, "balance": str(invoice.balance),
                               "status": invoice.status})
        return refund
