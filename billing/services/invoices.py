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
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, Organization
from accounts.roles import Role
from accounts.selectors import organizations_across_tenants
from billing import charges as billing_charges
from billing.models import BillingProfile, DunningReminder, Invoice, InvoiceLine, InvoiceSequence
from billing.money import ZERO, round_line
from billing.selectors.pricing import billing_profile, billing_profiles
from billing.selectors.tax import TaxRateTable, TaxTreatment, tax_treatment
from billing.services.azure import UsageExport, azure_meters_to_bill, azure_pending_charges
from core.audit import Actor, AuditEntry, audit_record, audit_record_many
from core.tenancy import tenant_context, unscoped_no_tenant
from licensing import nce
from licensing.models import SeatBatch, Subscription, SubscriptionEvent

log = logging.getLogger(__name__)
RUN_ACTOR = Actor.system("billing_run")
PREFIX = {Invoice.Kind.INVOICE: "INV", Invoice.Kind.CREDIT_NOTE: "CN"}
EMAIL_TASK = "billing.tasks.send_invoice_email"
# InvoiceSequence's table: a renamed table fails every billing test at its first document.
NEXT_NUMBERS_SQL = ('UPDATE "billing_invoicesequence" SET "last" = "last" + %s WHERE "year" = %s AND "kind" = %s '
                    'RETURNING "last"')
# Organisations billed per transaction by billing_run (docs/decisions/030-billing-run-in-batches.md).
RUN_BATCH = 50
LINE_BATCH = 2000


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
    """Bill every active organisation for ``month`` (a closed month), ``RUN_BATCH`` organisations per
    transaction (docs/decisions/030-billing-run-in-batches.md); with ``azure_usage``, their Azure
    consumption too (services/azure.py).

    The organisations already billed for the month are read in one query and skipped, and the tax table
    is read once, so a second run costs two queries whatever the number of organisations.
    """
    now = now or timezone.now()
    period, until = month_start(month), month_bounds(month)[1]
    _refuse_open_month(period, until, now)
    result = RunResult(month=period)
    billed = _organizations_billed(period)
    rates = TaxRateTable(now.astimezone(UTC).date())
    batch: list[Organization] = []
    for organization in organizations_across_tenants(active_only=True):
        result.organizations += 1
        if organization.pk not in billed:
            batch.append(organization)
        if len(batch) == RUN_BATCH:
            result.documents += _bill_batch(batch, period=period, until=until, now=now, rates=rates,
                                            azure_usage=azure_usage)
            batch = []
    if batch:
        result.documents += _bill_batch(batch, period=period, until=until, now=now, rates=rates,
                                        azure_usage=azure_usage)
    return result


def _organizations_billed(period: date) -> set:
    """Ids of the organisations a run has already billed for ``period``: ids only, read across tenants.

    A shortcut, not the guarantee: an organisation billed by a racing run after this read still
    collides on the unique constraints and bills nothing.
    """
    with unscoped_no_tenant():
        return set(Invoice.unscoped_objects.filter(run_period=period).order_by()
                   .values_list("organization_id", flat=True).distinct())


def _bill_batch(organizations: list, *, period: date, until: datetime, now: datetime,
                rates: TaxRateTable, azure_usage: UsageExport | None = None) -> list[str]:
    """Bill organisations no run has billed for ``period`` in one transaction, scoped to them all.

    If a racing run billed one of them meanwhile, a unique constraint refuses the whole batch; each
    organisation is then billed alone, where the constraint decides for that organisation only.
    """
    # Read before the batch's transaction: the first batch that needs it waits for Microsoft's export.
    meters = azure_meters_to_bill(organizations=organizations, usage=azure_usage, period=period)
    try:
        with tenant_context(*organizations):
            documents = _issue_run_documents(organizations, period=period, until=until, now=now, rates=rates,
                                             meters=meters)
    except IntegrityError:
        log.info("billing run batch for %s lost a race; billing its organisations one by one", period)
        documents = []
        for organization in organizations:
            documents += _bill_organization(organization=organization, period=period, until=until, now=now,
                                            rates=rates, azure_usage=azure_usage)
    return [document.number for document in documents]


def _cancellations(subscription_ids) -> dict:
    """subscription id -> when it was cancelled (the ledger's first move to "deleted"), in the tenant scope."""
    rows = (SubscriptionEvent.objects
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


def pending_charges(*, organizations: list, until: datetime) -> dict:
    """Organisation id -> its (subscription, charge) pairs dated before ``until`` that no document has
    billed yet. Reads in the current tenant context, which must cover ``organizations``: three queries
    (four with a cancellation) whatever their number, their subscriptions and their lines."""
    org_ids = [organization.pk for organization in organizations]
    # A subscription owes only for its seat batches (charges.py counts seats from them), so reading the
    # batches with their subscription finds every subscription that can owe anything, in one query.
    batches = (SeatBatch.objects.filter(organization_id__in=org_ids, subscription__start_date__lt=until)
               .select_related("subscription").order_by("added_at", "pk"))
    batches_of: dict = {}
    for batch in batches:
        batches_of.setdefault(batch.subscription, []).append(batch)
    if not batches_of:
        return {}
    billed: dict = defaultdict(set)
    # No ordering: the default one would join every line to its invoice only to sort keys for a set.
    for org_id, key in (InvoiceLine.objects.filter(organization_id__in=org_ids, subscription_id__in=[
            sub.pk for sub in batches_of]).order_by().values_list("organization_id", "charge_key")):
        billed[org_id].add(key)
    deleted = [s.pk for s in batches_of if s.status == Subscription.Status.DELETED]
    cancelled = _cancellations(deleted) if deleted else {}
    out: dict = defaultdict(list)
    for sub, sub_batches in batches_of.items():
        billed_here = billed[sub.organization_id]
        refunded = _refunded_before(billed_here)
        before = {b.pk: refunded.get(str(b.pk), 0) for b in sub_batches}
        for charge in billing_charges.subscription_charges(
            subscription=sub, batches=sub_batches, until=until, ends_at=_ends_at(sub, cancelled.get(sub.pk)),
            cancelled_at=cancelled.get(sub.pk), refunded_before=before,
        ):
            if charge.key not in billed_here:
                out[sub.organization_id].append((sub, charge))
    return out


def _refuse_open_month(period: date, until: datetime, now: datetime) -> None:
    if until > now:
        raise BillingError(f"{period:%B %Y} has not ended yet; it can be billed from {until:%Y-%m-%d}.",
                           code="month_open")


def billing_run_organization(*, organization, month: date, now: datetime | None = None,
                             azure_usage: UsageExport | None = None) -> list[Invoice]:
    """Issue the organisation's invoice (charges) and credit note (refunds) for ``month``.

    Nothing is issued for a month that has not closed. Runs again later find every charge billed
    and issue nothing; a racing run that loses on a unique constraint rolls back whole.
    """
    now = now or timezone.now()
    period, until = month_start(month), month_bounds(month)[1]
    _refuse_open_month(period, until, now)
    return _bill_organization(organization=organization, period=period, until=until, now=now, rates=None,
                              azure_usage=azure_usage)


def _bill_organization(*, organization, period: date, until: datetime, now: datetime,
                       rates: TaxRateTable | None, azure_usage: UsageExport | None = None) -> list[Invoice]:
    meters = azure_meters_to_bill(organizations=[organization], usage=azure_usage, period=period)
    try:
        with tenant_context(organization):
            if Invoice.objects.for_org(organization).filter(run_period=period).exists():
                return []
            return _issue_run_documents([organization], period=period, until=until, now=now, rates=rates,
                                        meters=meters)
    except IntegrityError:
        # Another run billed these charges first: the constraint decided, this run bills nothing.
        log.info("billing run for %s %s lost a race; nothing billed twice", organization.pk, period)
        return []


def _issue_run_documents(organizations: list, *, period: date, until: datetime, now: datetime,
                         rates: TaxRateTable | None, meters: dict | None = None) -> list[Invoice]:
    """Each organisation's invoice per currency (charges, Azure consumption) and credit note per currency
    (refunds), in the caller's transaction and tenant context, which covers ``organizations``."""
    pending = pending_charges(organizations=organizations, until=until)
    consumption = {organization.pk: azure_pending_charges(organization=organization, meters=meters[organization.pk],
                                                          period=period)
                   for organization in organizations if meters and meters.get(organization.pk)}
    owing = [organization for organization in organizations
             if pending.get(organization.pk) or consumption.get(organization.pk)]
    if not owing:
        return []
    profiles = billing_profiles(owing)
    day = now.astimezone(UTC).date()
    drafts = []
    for organization in owing:
        groups: dict[tuple[str, str], list] = defaultdict(list)
        for sub, charge in pending.get(organization.pk, ()):
            kind = Invoice.Kind.CREDIT_NOTE if charge.amount < 0 else Invoice.Kind.INVOICE
            groups[(kind, sub.currency)].append((sub, charge))
        for currency, charge in consumption.get(organization.pk, ()):
            groups[(Invoice.Kind.INVOICE, currency)].append((None, charge))
        profile = profiles[organization.pk]
        tax = tax_treatment(organization=organization, profile=profile, day=day, rates=rates)
        for (kind, currency), items in sorted(groups.items()):
            items.sort(key=lambda pair: (pair[1].dated, pair[0].product_title if pair[0] else "", pair[1].key))
            drafts.append(_draft(organization=organization, kind=kind, currency=currency, items=items,
                                 run_period=period, now=now, profile=profile, tax=tax))
    return _issue(drafts, now=now, actor=RUN_ACTOR)


# --- issuing ---------------------------------------------------------------------------------------
def _next_numbers(kind: str, year: int, count: int) -> int:
    """Take ``count`` consecutive numbers and return the first, under the row lock the UPDATE takes,
    held until the issuing transaction ends (so a number is used only if its document commits).

    One ``UPDATE ... RETURNING`` takes the lock and reads the number (the ORM's update() returns no
    rows, and a second statement would be one more round trip for every batch of documents)."""
    with connection.cursor() as cursor:
        cursor.execute(NEXT_NUMBERS_SQL, [count, year, kind])
        row = cursor.fetchone()
        if row is None:
            try:
                with transaction.atomic():
                    InvoiceSequence.objects.create(year=year, kind=kind, last=count)
                row = (count,)
            except IntegrityError:  # created by a racing run meanwhile
                cursor.execute(NEXT_NUMBERS_SQL, [count, year, kind])
                row = cursor.fetchone()
    return row[0] - count + 1


def _product_line(sub: Subscription) -> str:
    words = nce.TERM_WORDS.get(sub.term_duration, sub.term_duration)
    return f"{sub.product_title} ({words} term, billed {sub.billing_cycle})"[:300]


@dataclass
class _Draft:
    """A document and its lines, not yet numbered nor written."""

    invoice: Invoice
    lines: list[InvoiceLine]


def _draft(*, organization, kind: str, currency: str, items: list, run_period: date | None, now: datetime,
           profile: BillingProfile, tax: TaxTreatment, credited_invoice: Invoice | None = None, reason: str = "",
           tax_key: str | None = None) -> _Draft:
    """One document and its lines. ``items`` are (subscription, Charge) pairs; amounts are already
    rounded, so totals are exact sums."""
    if not items:
        raise BillingError("A document needs at least one line.", code="empty_invoice")
    issued_day = now.astimezone(UTC).date()
    subtotal = sum((c.amount for _, c in items), ZERO)
    tax_amount = round_line(subtotal * tax.rate_percent / 100)
    invoice = Invoice(
        organization=organization, kind=kind, sequence_year=issued_day.year, run_period=run_period,
        currency=currency, subtotal=subtotal, tax_total=tax_amount, total=subtotal + tax_amount, tax_name=tax.name,
        tax_rate_percent=tax.rate_percent, tax_note=tax.note, issued_at=now,
        due_on=issued_day + timedelta(days=profile.payment_terms_days),
        status=Invoice.Status.OPEN if kind == Invoice.Kind.INVOICE else Invoice.Status.PAID,
        paid_at=None if kind == Invoice.Kind.INVOICE else now, credited_invoice=credited_invoice, reason=reason,
        bill_to_name=organization.legal_name, bill_to_country=organization.country,
        bill_to_address=organization.billing_address, bill_to_tax_id=organization.tax_id,
    )
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
    return _Draft(invoice, lines)


def _issue(drafts: list[_Draft], *, now: datetime, actor: Actor) -> list[Invoice]:
    """Number, write and record documents, all or nothing, in the caller's transaction: a statement for
    each kind's numbers, one for the documents, one for their lines and three for the audit events.

    Invoices take their numbers before credit notes, and every number is taken before the audit chain's
    head: one lock order for every issuing transaction, so racing runs wait for each other and never
    deadlock (the test is billing/tests/test_billing_run_concurrency.py)."""
    year = now.astimezone(UTC).date().year
    ordered = [d for d in drafts if d.invoice.kind == Invoice.Kind.INVOICE]
    ordered += [d for d in drafts if d.invoice.kind != Invoice.Kind.INVOICE]
    for kind in (Invoice.Kind.INVOICE, Invoice.Kind.CREDIT_NOTE):
        of_kind = [d.invoice for d in ordered if d.invoice.kind == kind]
        if not of_kind:
            continue
        for number, invoice in enumerate(of_kind, start=_next_numbers(kind, year, len(of_kind))):
            invoice.sequence_number, invoice.number = number, f"{PREFIX[kind]}-{year}-{number:06d}"
            # Field validation only: the unique constraints are the database's to enforce.
            invoice.full_clean(exclude=["organization"], validate_unique=False, validate_constraints=False)
    Invoice.objects.bulk_create([d.invoice for d in ordered])
    InvoiceLine.objects.bulk_create([line for d in ordered for line in d.lines], batch_size=LINE_BATCH)
    audit_record_many(actor=actor, entries=[AuditEntry(
        f"billing.{d.invoice.kind}_issued", organization=d.invoice.organization, target=d.invoice,
        metadata={"number": d.invoice.number, "total": str(d.invoice.total), "currency": d.invoice.currency,
                  "lines": len(d.lines)}) for d in ordered])
    for d in ordered:
        invoice_id, org_id = str(d.invoice.pk), str(d.invoice.organization_id)
        # A broker outage must not undo the invoice: robust logs it, and the e-mail can be sent again.
        transaction.on_commit(lambda i=invoice_id, o=org_id: current_app.tasks[EMAIL_TASK].apply_async(
            kwargs={"invoice_id": i, "organization_id": o}), robust=True)
    return [d.invoice for d in ordered]


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
        [note] = _issue([_draft(organization=organization, kind=Invoice.Kind.CREDIT_NOTE, currency=invoice.currency,
                                items=items, run_period=None, now=now, profile=billing_profile(organization),
                                credited_invoice=invoice, reason=reason[:300], tax_key=f"tax:credit:{invoice.pk}",
                                # The credited invoice's own tax, so the correction reverses it exactly.
                                tax=TaxTreatment(invoice.tax_name, invoice.tax_rate_percent, invoice.tax_note))],
                        now=now, actor=actor)
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
