"""Reconciliation against Microsoft: import its line items, match them with our invoice lines per
Microsoft subscription and charge day, and report what does not agree, with the money at risk.

- Charges (positive) match on (subscription, UTC day the charge starts): the period charge of our
  invoice and Microsoft's ``new``/``cycleCharge``/``renew`` line start the same day, a mid-period
  addition and Microsoft's ``addQuantity`` line too.
- Credits (negative) match per subscription over the whole import: Microsoft dates a refund on the
  day of the removal, we date it with the seats' own period, so days would not meet.
- Only charges of months our billing run has closed are compared; later ones are counted as
  "not yet billed" (the run bills them after the month ends), not as leakage.

Items are streamed from Partner Center and written in batches; matching keeps one small total per
key in memory, not the items.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from django.db import DatabaseError
from django.utils import timezone

from billing.models import InvoiceLine, MicrosoftLineItem, ReconciliationFinding, ReconciliationRun
from core.audit import Actor, audit_record
from core.tenancy import unscoped_no_tenant
from licensing.microsoft.client import default_client
from licensing.models import Subscription

BATCH = 2000
CENT = Decimal("0.01")


@functools.lru_cache(maxsize=4096)
def _parse_time(value: str | None) -> datetime | None:
    # Cached: a file's charges start and end on few distinct days, and its lines repeat them.
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _decimal(value) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal(0)


class ReconciliationError(Exception):
    """The run could not be written; it is marked failed with the reason."""


class _Totals:
    __slots__ = ("amount", "organization_id", "quantity", "unit")

    def __init__(self):
        self.quantity, self.amount, self.unit, self.organization_id = 0, Decimal(0), Decimal(0), None


def _key(ms_subscription_id: str, day: date, amount: Decimal):
    return (ms_subscription_id, day if amount >= 0 else "credit")


def reconciliation_run(*, actor: Actor, source: str = "unbilled", items=None, now: datetime | None = None
                       ) -> ReconciliationRun:
    """Import Microsoft's line items (``source``: "unbilled" or an invoice id; ``items`` overrides the
    download, for tests and benchmarks) and write the findings. Staff-only: spans organisations.

    Everything it writes, the run included, is written as the system role: Microsoft's lines and the findings
    span customers (row-level security shows the application role one organisation's rows), and the run is
    committed on the system connection before its lines point to it. Were the run inserted on the default
    connection inside a request's transaction (the admin's "Reconcile now"), the system connection's foreign
    key check on each line would wait for that transaction, which waits for it."""
    now = now or timezone.now()
    with unscoped_no_tenant():
        run = ReconciliationRun.objects.create(source=source[:64], started_at=now)
    try:
        return _reconcile(run, actor=actor, source=source, items=items, now=now)
    except DatabaseError as exc:
        # Without the system role (SYSTEM_DATABASE_URL), row-level security refuses the lines: fail closed.
        with unscoped_no_tenant():
            ReconciliationRun.objects.filter(pk=run.pk).update(
                status=ReconciliationRun.Status.FAILED, finished_at=timezone.now(),
                error=f"The database refused the run's rows ({type(exc).__name__}): is the system role "
                      "(SYSTEM_DATABASE_URL) configured?")
        raise ReconciliationError("The reconciliation could not be written; see the run's error.") from exc


def _reconcile(run: ReconciliationRun, *, actor: Actor, source: str, items, now: datetime) -> ReconciliationRun:
    if items is None:
        pc = default_client().partner_center
        items = pc.iter_unbilled_line_items() if source == "unbilled" else pc.iter_billed_line_items(
            invoice_id=source)
    # Every customer's subscriptions: read as the system role (docs/decisions/025-rls-without-a-bypass.md).
    with unscoped_no_tenant():
        subscriptions = dict(Subscription.unscoped_objects.exclude(
            ms_subscription_id=None).values_list("ms_subscription_id", "organization_id"))
    closed_before = datetime(now.year, now.month, 1, tzinfo=UTC)
    theirs: dict = defaultdict(_Totals)
    pending, batch, count = Decimal(0), [], 0
    first_day: date | None = None
    for raw in items:
        start = _parse_time(raw.get("chargeStartDate"))
        if start is None or not raw.get("subscriptionId"):
            continue
        amount = _decimal(raw.get("subtotal"))
        ms_id = raw["subscriptionId"]
        # run_id, not run: assigning the object asks the database router once per row.
        row = MicrosoftLineItem(
            run_id=run.pk, organization_id=subscriptions.get(ms_id),
            reference_id=str(raw.get("referenceId") or count)[:64],
            ms_customer_id=str(raw.get("customerId") or "")[:64], ms_subscription_id=ms_id[:64],
            invoice_number=str(raw.get("invoiceNumber") or "")[:32], charge_type=str(raw.get("chargeType"))[:32],
            product_name=str(raw.get("productName") or "")[:200], charge_start=start,
            charge_end=_parse_time(raw.get("chargeEndDate")) or start, quantity=int(raw.get("quantity") or 0),
            unit_price=_decimal(raw.get("unitPrice")), subtotal=amount,
            currency=str(raw.get("currency") or "USD")[:3])
        batch.append(row)
        count += 1
        if len(batch) >= BATCH:
            with unscoped_no_tenant():
                MicrosoftLineItem.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
        if start >= closed_before:
            pending += amount
            continue
        first_day = min(first_day, start.date()) if first_day else start.date()
        totals = theirs[_key(ms_id, start.date(), amount)]
        totals.quantity += abs(row.quantity)
        totals.amount += amount
        totals.unit = row.unit_price
        totals.organization_id = row.organization_id
    if batch:
        with unscoped_no_tenant():
            MicrosoftLineItem.objects.bulk_create(batch, ignore_conflicts=True)
    findings = _match(run, theirs, first_day, closed_before, subscriptions)
    # The run was created on the system alias and is saved there again (the router names the alias).
    with unscoped_no_tenant():
        ReconciliationFinding.objects.bulk_create(findings, batch_size=BATCH)
        run.items = count
        run.status = ReconciliationRun.Status.DONE
        run.finished_at = timezone.now()
        run.summary = _summary(findings, pending)
        run.save()
        audit_record(actor=actor, action="billing.reconciliation_run", target=run,
                     metadata={"source": run.source, "items": count, "findings": len(findings)})
    return run


def _ours(ms_ids: set[str], first_day: date, closed_before: datetime) -> dict:
    ours: dict = defaultdict(_Totals)
    rows = (InvoiceLine.unscoped_objects.filter(ms_subscription_id__in=ms_ids, period_start__date__gte=first_day,
                                               period_start__lt=closed_before)
            .exclude(kind=InvoiceLine.Kind.TAX).exclude(invoice__status="void")
            .values_list("ms_subscription_id", "period_start", "quantity", "amount", "organization_id"))
    # Every customer's invoice lines: read as the system role (docs/decisions/025-rls-without-a-bypass.md).
    with unscoped_no_tenant():
        for ms_id, start, quantity, amount, org_id in rows.iterator(chunk_size=BATCH):
            totals = ours[_key(ms_id, start.astimezone(UTC).date(), amount)]
            totals.quantity += quantity
            totals.amount += amount
            totals.organization_id = org_id
    return ours


def _match(run, theirs: dict, first_day: date | None, closed_before: datetime, subscriptions: dict) -> list:
    if first_day is None:
        return []
    ours = _ours({key[0] for key in theirs}, first_day, closed_before)
    findings = []
    K = ReconciliationFinding.Kind

    def finding(kind, key, ms: _Totals | None, our: _Totals | None, at_risk: Decimal, note: str):
        ms_id, day = key
        findings.append(ReconciliationFinding(
            run_id=run.pk, organization_id=(our or ms).organization_id, kind=kind, ms_subscription_id=ms_id,
            charge_day=day if isinstance(day, date) else first_day, ms_quantity=ms.quantity if ms else 0,
            our_quantity=our.quantity if our else 0, ms_amount=ms.amount if ms else 0,
            our_amount=our.amount if our else 0, at_risk=abs(at_risk).quantize(CENT), note=note[:300]))

    for key, ms in theirs.items():
        our = ours.get(key)
        if key[0] not in subscriptions:
            finding(K.UNKNOWN, key, ms, None, ms.amount, "Microsoft charged a subscription no customer of ours has.")
        elif our is None:
            finding(K.LEAKAGE, key, ms, None, ms.amount,
                    "Microsoft credited us and we did not refund the customer." if key[1] == "credit"
                    else "Microsoft charged us and no invoice line bills it.")
        else:
            if ms.quantity != our.quantity:
                finding(K.QUANTITY, key, ms, our, (ms.unit * (ms.quantity - our.quantity)),
                        f"Microsoft counts {ms.quantity} seats, our invoice {our.quantity}.")
            if key[1] != "credit" and our.amount < ms.amount:
                finding(K.PRICE, key, ms, our, ms.amount - our.amount,
                        "We billed less than Microsoft charged us.")
    for key, our in ours.items():
        if key not in theirs:
            finding(K.OVER_BILLING, key, None, our, our.amount,
                    "We refunded the customer and Microsoft did not credit us." if key[1] == "credit"
                    else "We billed a charge Microsoft did not make.")
    return findings


def _summary(findings: list, pending: Decimal) -> dict:
    counts: dict = defaultdict(int)
    at_risk: dict = defaultdict(Decimal)
    per_customer: dict = defaultdict(Decimal)
    for f in findings:
        counts[f.kind] += 1
        at_risk[f.kind] += f.at_risk
        per_customer[str(f.organization_id or "unknown")] += f.at_risk
    return {"counts": dict(counts), "at_risk": {k: str(v) for k, v in at_risk.items()},
            "at_risk_per_customer": {k: str(v) for k, v in sorted(per_customer.items(), key=lambda kv: -kv[1])},
            "total_at_risk": str(sum(at_risk.values(), Decimal(0))), "not_yet_billed": str(pending)}
