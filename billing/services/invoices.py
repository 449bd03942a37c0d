"""The monthly billing run, issuing invoices and credit notes, corrections and overdue marking.

Idempotent by construction (docs/decisions/016-billing.md): every charge has a key, and the
database holds each key once per organisation (``charge_billed_once``) and one run document per
organisation, kind, month and currency (``run_once_per_month``). A second run finds its charges
billed and bills nothing; two racing runs collide on a constraint and one rolls back.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from celery import current_app
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, Organization
from accounts.roles import Role
from billing import charges as billing_charges
from billing.models import DunningReminder, Invoice, InvoiceLine, InvoiceSequence
from billing.money import ZERO, round_line
from billing.selectors.pricing import billing_profile
from billing.selectors.tax import TaxTreatment, tax_treatment
from billing.services.azure import UsageExport, azure_meters_to_bill, azure_pending_charges
from core.audit import Actor, audit_record
from core.tenancy import tenant_context
from licensing import nce
from licensing.models import Subscription, SubscriptionEvent

log = logging.getLogger(__name__)
RUN_ACTOR = Actor.system("billing_run")
PREFIX = {Invoice.Kind.INVOICE: "INV", Invoice.Kind.CREDIT_NOTE: "CN"}
EMAIL_TASK = "billing.tasks.send_invoice_email"


class BillingError(ValidationError):
    pass


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    first = month_start(month)
    start = datetime(first.year, first.month, 1, tzinfo=UTC)
    return start, nce.add_months(start, 1)


def previous_month(now: datetime) -> date:
    first = now.astimezone(UTC).date().replace(day=1)
    return (first - timedelta(days=1)).replace(day=1)


@dataclass
class RunResult:
    month: date
    organizations: int = 0
    documents: list[str] = field(default_factory=list)


# --- the run -------------------------------------------------------------------------------------
def billing_run(*, month: date, now: datetime | None = None, azure_usage: UsageExport | None = None) -> RunResult:
    """Bill every active organisation for ``month`` (a closed month), one transaction each; with
    ``azure_usage``, its Azure consumption too (services/azure.py)."""
    now = now or timezone.now()
    result = RunResult(month=month_start(month))
    organizations = Organization.objects.filter(status=Organization.Status.ACTIVE).order_by("pk")
    for organization in organizations.iterator(chunk_size=500):
        documents = billing_run_organization(organization=organization, month=month, now=now,
                                             azure_usage=azure_usage)
        result.organizations += 1
        result.documents.extend(d.number for d in documents)
    return result


def _cancellations(organization, subscription_ids) -> dict:
    """subscription id -> when it was cancelled (the ledger's first move to "deleted")."""
    rows = (SubscriptionEvent.objects.for_org(organization)
            .filter(subscription_id__in=subscription_ids, after__status=Subscription.Status.DELETED)
            .order_by("created_at").values_list("subscription_id", "created_at"))
    out: dict = {}
    for sub_id, at in rows:
        out.setdefault(sub_id, at)
    return out


def _ends_at(subscription: Subscription, cancelled_at):
    Status = Subscription.Status
    if subscription.status == Status.DELETED:
        return cancelled_at or subscription.updated_at
    if subscription.status in (Status.EXPIRED, Status.DISABLED):
        return subscription.commitment_end or subscription.updated_at
    return None


def _refunded_before(billed_keys: set[str]) -> dict:
    out: dict = {}
    for key in billed_keys:
        if key.startswith("refund:"):
            _, batch_id, seats = key.split(":")
            out[batch_id] = max(out.get(batch_id, 0), int(seats))
    return out


def pending_charges(*, organization, until: datetime) -> list[tuple[Subscription, billing_charges.Charge]]:
    """Charges dated before ``until`` that no document has billed yet."""
    subscriptions = list(Subscription.objects.for_org(organization)
                         .filter(start_date__isnull=False, start_date__lt=until)
                         .prefetch_related("seat_batches"))
    if not subscriptions:
        return []
    billed = set(InvoiceLine.objects.for_org(organization)
                 .filter(subscription__in=subscriptions).values_list("charge_key", flat=True))
    refunded = _refunded_before(billed)
    deleted = [s.pk for s in subscriptions if s.status == Subscription.Status.DELETED]
    cancelled = _cancellations(organization, deleted) if deleted else {}
    out = []
    for sub in subscriptions:
        batches = list(sub.seat_batches.all())
        before = {b.pk: refunded.get(str(b.pk), 0) for b in batches}
        for charge in billing_charges.subscription_charges(
            subscription=sub, batches=batches, until=until, ends_at=_ends_at(sub, cancelled.get(sub.pk)),
            cancelled_at=cancelled.get(sub.pk), refunded_before=before,
        ):
            if charge.key not in billed:
                out.append((sub, charge))
    return out


def billing_run_organization(*, organization, month: date, now: datetime | None = None,
                             azure_usage: UsageExport | None = None) -> list[Invoice]:
    """Issue the organisation's invoice (charges) and credit note (refunds) for ``month``.

    Nothing is issued for a month that has not closed. Runs again later find every charge billed
    and issue nothing; a racing run that loses on a unique constraint rolls back whole.
    """
    now = now or timezone.now()
    period, until = month_start(month), month_bounds(month)[1]
    if until > now:
        raise BillingError(f"{period:%B %Y} has not ended yet; it can be billed from {until:%Y-%m-%d}.",
                           code="month_open")
    meters = azure_meters_to_bill(organization=organization, usage=azure_usage, period=period)
    try:
        with tenant_context(organization):
            if Invoice.objects.for_org(organization).filter(run_period=period).exists():
                return []
            groups: dict[tuple[str, str], list] = defaultdict(list)
            for sub, charge in pending_charges(organization=organization, until=until):
                kind = Invoice.Kind.CREDIT_NOTE if charge.amount < 0 else Invoice.Kind.INVOICE
                groups[(kind, sub.currency)].append((sub, charge))
            for currency, charge in azure_pending_charges(organization=organization, meters=meters, period=period):
                groups[(Invoice.Kind.INVOICE, currency)].append((None, charge))
            documents = []
            for (kind, currency), items in sorted(groups.items()):
                items.sort(key=lambda pair: (pair[1].dated, pair[0].product_title if pair[0] else "", pair[1].key))
                documents.append(_issue(organization=organization, kind=kind, currency=currency, items=items,
                                        run_period=period, now=now, actor=RUN_ACTOR))
            return documents
    except IntegrityError:
        # Another run billed these charges first: the constraint decided, this run bills nothing.
        log.info("billing run for %s %s lost a race; nothing billed twice", organization.pk, period)
        return []


# --- issuing ---------------------------------------------------------------------------------------
def _next_number(kind: str, year: int) -> tuple[int, str]:
    """Increment under the row lock the UPDATE takes, held until the issuing transaction ends."""
    if not InvoiceSequence.objects.filter(year=year, kind=kind).update(last=F("last") + 1):
        try:
            with transaction.atomic():
                InvoiceSequence.objects.create(year=year, kind=kind, last=1)
        except IntegrityError:  # created by a racing run meanwhile
            InvoiceSequence.objects.filter(year=year, kind=kind).update(last=F("last") + 1)
    last = InvoiceSequence.objects.filter(year=year, kind=kind).values_list("last", flat=True).get()
    return last, f"{PREFIX[kind]}-{year}-{last:06d}"


def _product_line(sub: Subscription) -> str:
    words = nce.TERM_WORDS.get(sub.term_duration, sub.term_duration)
    return f"{sub.product_title} ({words} term, billed {sub.billing_cycle})"[:300]


def _issue(*, organization, kind: str, currency: str, items: list, run_period: date | None, now: datetime,
           actor: Actor, credited_invoice: Invoice | None = None, reason: str = "",
           tax_key: str | None = None, tax: TaxTreatment | None = None) -> Invoice:
    """Write one document and its lines with its number, all or nothing. ``items`` are
    (subscription, Charge) pairs; amounts are already rounded, so totals are exact sums."""
    if not items:
        raise BillingError("A document needs at least one line.", code="empty_invoice")
    profile = billing_profile(organization)
    issued_day = now.astimezone(UTC).date()
    tax = tax or tax_treatment(organization=organization, profile=profile, day=issued_day)
    subtotal = sum((c.amount for _, c in items), ZERO)
    tax_amount = round_line(subtotal * tax.rate_percent / 100)
    number_seq, number = _next_number(kind, issued_day.year)
    invoice = Invoice(
        organization=organization, kind=kind, number=number, sequence_year=issued_day.year,
        sequence_number=number_seq, run_period=run_period, currency=currency, subtotal=subtotal,
        tax_total=tax_amount, total=subtotal + tax_amount, tax_name=tax.name, tax_rate_percent=tax.rate_percent,
        tax_note=tax.note, issued_at=now, due_on=issued_day + timedelta(days=profile.payment_terms_days),
        status=Invoice.Status.OPEN if kind == Invoice.Kind.INVOICE else Invoice.Status.PAID,
        paid_at=None if kind == Invoice.Kind.INVOICE else now, credited_invoice=credited_invoice, reason=reason,
        bill_to_name=organization.legal_name, bill_to_country=organization.country,
        bill_to_address=organization.billing_address, bill_to_tax_id=organization.tax_id,
    )
    # Field validation only: the unique constraints are the database's to enforce (one query fewer each).
    invoice.full_clean(exclude=["organization"], validate_unique=False, validate_constraints=False)
    invoice.save()
    lines = []
    for position, (sub, charge) in enumerate(items, start=1):
        lines.append(InvoiceLine(
            organization=organization, invoice=invoice, position=position, kind=charge.kind, charge_key=charge.key,
            subscription=sub,
            ms_subscription_id=charge.ms_subscription_id or ((sub.ms_subscription_id or "") if sub else ""),
            description=charge.description or (_product_line(sub) if sub else charge.explanation[:300]),
            explanation=charge.explanation,
            period_start=charge.period_start, period_end=charge.period_end, quantity=charge.quantity,
            unit_price=charge.unit_price, amount=charge.amount,
        ))
    lines.append(InvoiceLine(
        organization=organization, invoice=invoice, position=len(items) + 1, kind=InvoiceLine.Kind.TAX,
        charge_key=tax_key or f"tax:{kind}:{run_period}:{currency}", description=f"{tax.name} {tax.rate_percent}%",
        explanation=tax.note or f"{tax.name} at {tax.rate_percent}% of {currency} {subtotal}, rounded half up once.",
        quantity=1, unit_price=tax_amount, amount=tax_amount,
    ))
    InvoiceLine.objects.bulk_create(lines)
    audit_record(actor=actor, action=f"billing.{kind}_issued", organization=organization, target=invoice,
                 metadata={"number": number, "total": str(invoice.total), "currency": currency,
                           "lines": len(lines)})
    invoice_id, org_id = str(invoice.pk), str(organization.pk)
    # A broker outage must not undo the invoice: robust logs it, and the e-mail can be sent again.
    transaction.on_commit(lambda: current_app.tasks[EMAIL_TASK].apply_async(
        kwargs={"invoice_id": invoice_id, "organization_id": org_id}), robust=True)
    return invoice


def invoice_recipients(organization) -> list[str]:
    """The billing contacts, or else the owners and billing admins."""
    contacts = [c["email"] for c in (billing_profile(organization).contacts or []) if c.get("email")]
    if contacts:
        return contacts
    members = Membership.objects.filter(organization=organization, role__in=[Role.OWNER, Role.BILLING_ADMIN])
    return sorted({m.user.email for m in members.select_related("user")})


def invoice_email(*, organization, invoice_id) -> bool:
    """E-mail an issued document once: ``emailed_at`` is claimed first, so a redelivered task sends nothing."""
    with tenant_context(organization):
        claimed = Invoice.objects.for_org(organization).filter(pk=invoice_id, emailed_at__isnull=True).update(
            emailed_at=timezone.now())
        if not claimed:
            return False
        invoice = Invoice.objects.for_org(organization).get(pk=invoice_id)
        recipients = invoice_recipients(organization)
        if not recipients:
            return False
        link = settings.SITE_URL.rstrip("/") + reverse("billing:invoice", kwargs={"org_slug": organization.slug,
                                                                                  "pk": invoice.pk})
        what = "credit note" if invoice.is_credit_note else "invoice"
        send_mail(
            subject=f"Your {what} {invoice.number} from {settings.BILLING_SELLER_NAME}",
            message=(f"{what.capitalize()} {invoice.number} for {invoice.currency} {invoice.total} was issued on "
                     f"{invoice.issued_at:%Y-%m-%d}" + ("" if invoice.is_credit_note else f", due {invoice.due_on}")
                     + f".\n\nSee it, download it or pay it here: {link}"),
            from_email=None, recipient_list=recipients,
        )
        return True


# --- corrections and status -----------------------------------------------------------------------
def invoice_credit_in_full(*, invoice: Invoice, actor: Actor, reason: str, now: datetime | None = None) -> Invoice:
    """Correct an issued invoice: a credit note reversing every line, and the invoice marked void."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason:
        raise BillingError({"reason": "Say why the invoice is credited; the customer sees it."})
    organization = invoice.organization
    with tenant_context(organization):
        invoice = Invoice.objects.for_org(organization).select_for_update().get(pk=invoice.pk)
        if invoice.kind != Invoice.Kind.INVOICE or invoice.status == Invoice.Status.VOID:
            raise BillingError("Only an invoice that is not void can be credited.", code="not_creditable")
        items = []
        lines = InvoiceLine.objects.for_org(organization).filter(
            invoice=invoice, kind__in=[InvoiceLine.Kind.CHARGE, InvoiceLine.Kind.PRORATION,
                                       InvoiceLine.Kind.CONSUMPTION]).select_related("subscription")
        for line in lines:
            items.append((line.subscription, billing_charges.Charge(
                InvoiceLine.Kind.CORRECTION, f"credit:{line.pk}", now, line.quantity, line.unit_price, -line.amount,
                line.period_start, line.period_end, f"Reverses line {line.position} of {invoice.number}: {reason}",
                ms_subscription_id=line.ms_subscription_id,
                description="" if line.subscription_id else line.description)))
        if not items:
            raise BillingError("This invoice has no lines to credit.", code="not_creditable")
        note = _issue(organization=organization, kind=Invoice.Kind.CREDIT_NOTE, currency=invoice.currency,
                      items=items, run_period=None, now=now, actor=actor, credited_invoice=invoice,
                      reason=reason[:300], tax_key=f"tax:credit:{invoice.pk}",
                      # The credited invoice's own tax, so the correction reverses it exactly.
                      tax=TaxTreatment(invoice.tax_name, invoice.tax_rate_percent, invoice.tax_note))
        invoice.status = Invoice.Status.VOID
        invoice.save(update_fields=["status", "updated_at"])
        audit_record(actor=actor, action="billing.invoice_voided", organization=organization, target=invoice,
                     metadata={"credit_note": note.number, "reason": reason[:300]})
        return note


def invoices_mark_overdue(*, organization, now: datetime | None = None) -> int:
    """The organisation's open and partly paid invoices past their due date become overdue; only the status
    moves (the paid amount shows what part is paid)."""
    today = (now or timezone.now()).astimezone(UTC).date()
    with tenant_context(organization):
        return Invoice.objects.for_org(organization).filter(
            status__in=[Invoice.Status.OPEN, Invoice.Status.PARTIALLY_PAID], kind=Invoice.Kind.INVOICE,
            due_on__lt=today,
        ).update(status=Invoice.Status.OVERDUE)


def invoices_send_reminders(*, organization, now: datetime | None = None) -> int:
    """Remind about unpaid invoices at the configured offsets after their due date.

    Only the latest offset reached is sent (a run after a pause does not send three at once); the
    unique (invoice, offset) row makes each reminder go out once. E-mails leave after commit.
    """
    now = now or timezone.now()
    today = now.astimezone(UTC).date()
    offsets = sorted(settings.BILLING_DUNNING_OFFSETS_DAYS)
    if not offsets:
        return 0
    sent = 0
    with tenant_context(organization):
        unpaid = Invoice.objects.for_org(organization).filter(
            kind=Invoice.Kind.INVOICE,
            status__in=[Invoice.Status.OPEN, Invoice.Status.PARTIALLY_PAID, Invoice.Status.OVERDUE],
            due_on__lte=today - timedelta(days=offsets[0]))
        for invoice in unpaid:
            reached = max(o for o in offsets if invoice.due_on + timedelta(days=o) <= today)
            if DunningReminder.objects.for_org(organization).filter(invoice=invoice, offset_days__gte=reached).exists():
                continue
            try:
                with transaction.atomic():
                    DunningReminder.objects.create(organization=organization, invoice=invoice, offset_days=reached,
                                                   sent_at=now)
            except IntegrityError:
                continue  # another run sent it
            recipients = invoice_recipients(organization)
            days = (today - invoice.due_on).days
            message = (f"Invoice {invoice.number} for {invoice.currency} {invoice.total} was due on "
                       f"{invoice.due_on} ({days} days ago) and is not paid yet. Pay it here: "
                       + settings.SITE_URL.rstrip("/")
                       + reverse("billing:invoice", kwargs={"org_slug": organization.slug, "pk": invoice.pk}))
            transaction.on_commit(lambda r=recipients, m=message, n=invoice.number: send_mail(
                subject=f"Reminder: invoice {n} is overdue", message=m, from_email=None, recipient_list=r),
                robust=True)
            audit_record(actor=RUN_ACTOR, action="billing.reminder_sent", organization=organization,
                         target=invoice, metadata={"offset_days": reached})
            sent += 1
    return sent
