"""The monthly billing run and reconciliation at scale (issue 11's figures).

- Billing run: 1,000 organisations with 10 subscriptions each (``BENCH_SCALE`` scales it), billed for
  one closed month, one transaction per organisation. Baseline: inserting the same invoices and
  lines with bulk_create (the write floor), in the same run. Goals in the issue are absolute: under
  60 s on Postgres, and a second run under 10 s that creates nothing; both are printed as notes.
- Reconciliation: 50,000 Microsoft line items matched against those invoices. Baseline: loading
  the same 50,000 rows with bulk_create. Goal: at most 3x. Peak memory is the largest growth of the
  process's resident size sampled while it runs (goal: under 200 MB); the billing run's too (flat: it
  holds one batch of organisations at a time).
- Statements sent are counted for both billing runs (docs/performance.md, "Billing").
"""

from __future__ import annotations

import os
import resource
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from benchmarks.emulator import scaled
from benchmarks.harness import Context, Result

ORGS, SUBS, ITEMS = 1000, 10, 50_000
START = datetime(2026, 1, 15, 10, tzinfo=UTC)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measured(func):
    """Run ``func``: its result, seconds, statements sent, and the largest resident size growth seen
    while it ran (sampled every 20 ms; the process's all-time peak would hide it behind the set-up)."""
    from django.db import connection

    statm = Path("/proc/self/statm")
    page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20 if statm.exists() else 0

    def resident() -> float:
        return int(statm.read_text().split()[1]) * page_mb if page_mb else _rss_mb()

    start, peak, done = resident(), [0.0], threading.Event()

    def sample():
        while not done.wait(0.02):
            peak[0] = max(peak[0], resident() - start)

    statements = [0]

    def count(execute, sql, params, many, context):
        statements[0] += 1
        return execute(sql, params, many, context)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    try:
        with connection.execute_wrapper(count):
            result = func()
    finally:
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
    return result, elapsed, statements[0], max(peak[0], resident() - start)


def _world(orgs: int) -> list:
    from accounts.models import Organization
    from licensing.models import SeatBatch, Subscription

    organizations = [Organization(slug=f"bench-billing-{n}", legal_name=f"Bench {n} Ltd", country="US")
                     for n in range(orgs)]
    Organization.objects.bulk_create(organizations, batch_size=500)
    subs, batches = [], []
    for org in organizations:
        for n in range(SUBS):
            sub = Subscription(organization=org, ms_subscription_id=str(uuid.uuid4()), catalog_item_id="BENCH:0001:AV",
                               product_title=f"Bench licence {n}", status="active", quantity=10, term_duration="P1Y",
                               billing_cycle="monthly", unit_price=Decimal("12.34"), start_date=START,
                               commitment_end=START + timedelta(days=365))
            subs.append(sub)
            batches.append(SeatBatch(organization=org, subscription=sub, source="purchase", quantity=10,
                                     added_at=START, refundable_until=START + timedelta(days=7)))
    Subscription.unscoped_objects.bulk_create(subs, batch_size=2000)
    SeatBatch.unscoped_objects.bulk_create(batches, batch_size=2000)
    return subs


def _raw_insert(orgs: list, subs_by_org: dict) -> float:
    """The floor: the same invoices and lines written with bulk_create, no logic."""
    from billing.models import Invoice, InvoiceLine
    from core.immutable import retention_purge_deletes

    started = time.perf_counter()
    invoices, lines = [], []
    for n, org_id in enumerate(orgs):
        inv = Invoice(organization_id=org_id, kind="invoice", number=f"RAW-{n}", sequence_year=1999,
                      sequence_number=n + 1, run_period=date(1999, 1, 1), currency="USD", subtotal=0, tax_total=0,
                      total=0, issued_at=START, due_on=START.date(), bill_to_name="x")
        invoices.append(inv)
        for pos, sub in enumerate(subs_by_org[org_id], 1):
            lines.append(InvoiceLine(organization_id=org_id, invoice=inv, position=pos, kind="charge",
                                     charge_key=f"raw:{sub.pk}", subscription_id=sub.pk, description="x",
                                     quantity=10, unit_price=Decimal("12.34"), amount=Decimal("123.40")))
    Invoice.objects.bulk_create(invoices, batch_size=1000)
    InvoiceLine.objects.bulk_create(lines, batch_size=2000)
    elapsed = time.perf_counter() - started
    # Issued documents cannot be deleted (decision 029): the baseline's throwaway rows go the way the
    # retention purge's do, which the database's triggers admit.
    with retention_purge_deletes():
        InvoiceLine.unscoped_objects.filter(charge_key__startswith="raw:")._raw_delete(InvoiceLine.objects.db)
        Invoice.unscoped_objects.filter(sequence_year=1999)._raw_delete(Invoice.objects.db)
    return elapsed


def _items(subs: list, count: int) -> list[dict]:
    items = []
    for n in range(count):
        sub = subs[n % len(subs)]
        day = START if n < len(subs) else START + timedelta(days=31 * (n // len(subs)))
        items.append({"subscriptionId": sub.ms_subscription_id, "customerId": "c", "chargeType": "cycleCharge",
                      "chargeStartDate": day.isoformat(), "chargeEndDate": day.isoformat(), "quantity": 10,
                      "unitPrice": 10.0, "subtotal": 100.0, "currency": "USD", "referenceId": f"r{n}",
                      "productName": "Bench licence"})
    return items


def run(ctx: Context) -> list[Result]:
    from celery import current_app

    # Invoice e-mails are a worker's job in production: queue them (in memory) instead of sending inline.
    # Put back afterwards: the benchmarks after this one run their tasks eagerly (a directory sync that is
    # only queued never finishes).
    saved = current_app.conf.task_always_eager, current_app.conf.broker_url
    current_app.conf.task_always_eager = False
    current_app.conf.broker_url = "memory://"
    try:
        return _run(ctx)
    finally:
        current_app.conf.task_always_eager, current_app.conf.broker_url = saved


def _run(ctx: Context) -> list[Result]:
    from billing.models import Invoice, InvoiceLine, MicrosoftLineItem, ReconciliationRun
    from billing.services import invoices as invoice_services
    from billing.services.reconciliation import reconciliation_run
    from core.audit import Actor

    orgs = scaled(ORGS, minimum=20)
    subs = _world(orgs)
    ctx.say(f"{orgs:,} organisations, {len(subs):,} subscriptions")
    subs_by_org: dict = {}
    for sub in subs:
        subs_by_org.setdefault(sub.organization_id, []).append(sub)
    baseline = _raw_insert(list(subs_by_org), subs_by_org)
    month, now = date(2026, 1, 1), datetime(2026, 2, 1, 2, tzinfo=UTC)
    first, first_s, first_statements, grew = _measured(lambda: invoice_services.billing_run(month=month, now=now))
    counts = (Invoice.unscoped_objects.count(), InvoiceLine.unscoped_objects.count())
    second, second_s, second_statements, _ = _measured(lambda: invoice_services.billing_run(month=month, now=now))
    assert not second.documents and counts == (Invoice.unscoped_objects.count(), InvoiceLine.unscoped_objects.count())
    ctx.say(f"first run: {len(first.documents):,} invoices, {counts[1]:,} lines in {first_s:.1f} s, "
            f"{first_statements:,} statements, RSS +{grew:.0f} MB at most; "
            f"second run: nothing new in {second_s:.2f} s, {second_statements} statements")

    count = scaled(ITEMS, minimum=1000)
    items = _items(subs, count)
    started = time.perf_counter()
    load_run = ReconciliationRun.objects.create(source="bench-load", started_at=now)
    MicrosoftLineItem.objects.bulk_create([MicrosoftLineItem(
        run_id=load_run.pk, reference_id=i["referenceId"], ms_subscription_id=i["subscriptionId"],
        charge_type=i["chargeType"], charge_start=datetime.fromisoformat(i["chargeStartDate"]),
        charge_end=datetime.fromisoformat(i["chargeEndDate"]), quantity=10, unit_price=Decimal("10"),
        subtotal=Decimal("100"), currency="USD") for i in items], batch_size=2000)
    load_s = time.perf_counter() - started
    recon, recon_s, _, recon_grew = _measured(lambda: reconciliation_run(
        actor=Actor.system("bench"), items=iter(items), now=datetime(2026, 12, 7, tzinfo=UTC)))
    ctx.say(f"reconciliation of {recon.items:,} items: {recon_s:.1f} s (load alone {load_s:.1f} s), "
            f"RSS +{recon_grew:.0f} MB, findings {recon.summary.get('counts')}")
    return [
        Result(f"billing run, {orgs:,} orgs x {SUBS} subs", first_s, baseline, "s",
               note=f"first run {first_s:.1f} s (goal < 60 s at 1,000 orgs on Postgres); raw insert {baseline:.1f} s; "
                    f"RSS growth {grew:.0f} MB at most"),
        Result("second billing run (creates nothing)", second_s, first_s, "s",
               note=f"{second_s:.2f} s (goal < 10 s)"),
        Result(f"reconciliation, {count:,} line items", recon_s, load_s, "s", goal=3.0,
               note=f"peak RSS growth {recon_grew:.0f} MB (goal < 200 MB)"),
    ]
