"""Our own Azure fraud signals, as pure functions over the partner usage export.

:func:`summarise_rows` folds export rows (the Graph billing export's JSON lines: ``CustomerId``,
``SubscriptionId``, ``UsageDate``, ``BillingPreTaxTotal``, ``ResourceLocation``, ``MeterCategory``,
``SkuName``) into one :class:`DaySummary` per customer, Azure subscription and day.
:func:`anomalies` compares one day with the days before it and names what is out of pattern:

- ``spend_spike``: the day's spend far above the subscription's baseline (median of earlier days);
- ``new_region``: usage in a region never used before;
- ``gpu_vm_family`` / ``high_core_vm_family``: GPU (N-series) or 32+ vCPU virtual machine sizes
  appearing for the first time, the usual shape of crypto-mining on a stolen subscription.

Each signal carries a score (0-100) that the fraud policy turns into a response (decision 022).
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

MIN_HISTORY_DAYS = 7  # fewer days than this is no baseline: a new subscription is allowed to grow
SPIKE_RATIO = Decimal("3")
SEVERE_SPIKE_RATIO = Decimal("10")
SPIKE_MIN_EXCESS = Decimal("50")  # a few dollars over a tiny baseline is not fraud
HIGH_CORE_VCPUS = 32
_VM_SIZE = re.compile(r"^(?:Standard_)?([A-Za-z]+?)(\d+)", re.IGNORECASE)


@dataclass
class DaySummary:
    customer_id: str
    subscription_id: str
    day: date
    spend: Decimal = Decimal("0")
    currency: str = "USD"
    regions: set[str] = field(default_factory=set)
    vm_families: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Anomaly:
    signal: str
    score: int
    evidence: dict


def vm_family(sku_name: str) -> tuple[str, int] | None:
    """("NC", 24) for "NC24ads A100 v4", ("D", 2) for "D2s v5"; None for anything else."""
    match = _VM_SIZE.match((sku_name or "").strip())
    if not match:
        return None
    return match.group(1).upper(), int(match.group(2))


def family_label(sku_name: str) -> str:
    parsed = vm_family(sku_name)
    return f"{parsed[0]}{parsed[1]}" if parsed else ""


def summarise_rows(rows) -> dict[tuple[str, str, date], DaySummary]:
    days: dict[tuple[str, str, date], DaySummary] = {}
    for row in rows:
        try:
            day = date.fromisoformat(str(row["UsageDate"])[:10])
            amount = Decimal(str(row.get("BillingPreTaxTotal", "0")))
        except (KeyError, ValueError, InvalidOperation):
            continue  # a malformed row is skipped rather than stopping the scan of everyone else
        key = (str(row.get("CustomerId", "")), str(row.get("SubscriptionId", "")), day)
        if not key[0] or not key[1]:
            continue
        summary = days.get(key)
        if summary is None:
            summary = days[key] = DaySummary(key[0], key[1], day, currency=str(row.get("BillingCurrency") or "USD"))
        summary.spend += amount
        location = str(row.get("ResourceLocation") or row.get("MeterRegion") or "").strip().lower()
        if location:
            summary.regions.add(location)
        if str(row.get("MeterCategory", "")).lower() == "virtual machines":
            label = family_label(str(row.get("SkuName", "")))
            if label:
                summary.vm_families.add(label)
    return days


def anomalies(history: list[DaySummary], today: DaySummary) -> list[Anomaly]:
    """What is out of pattern in ``today`` given the earlier days of the same subscription."""
    earlier = [d for d in history if d.day < today.day]
    if len(earlier) < MIN_HISTORY_DAYS:
        return []
    found: list[Anomaly] = []
    baseline = Decimal(str(statistics.median(d.spend for d in earlier)))
    excess = today.spend - baseline
    if excess >= SPIKE_MIN_EXCESS and (baseline == 0 or today.spend >= baseline * SPIKE_RATIO):
        ratio = (today.spend / baseline) if baseline else None
        severe = ratio is None or ratio >= SEVERE_SPIKE_RATIO
        found.append(Anomaly("spend_spike", 95 if severe else 70, {
            "day": today.day.isoformat(), "spend": str(today.spend.quantize(Decimal("0.01"))),
            "baseline": str(baseline.quantize(Decimal("0.01"))), "currency": today.currency,
            "ratio": str(ratio.quantize(Decimal("0.1"))) if ratio is not None else "new spend",
        }))
    seen_regions = set().union(*(d.regions for d in earlier))
    new_regions = sorted(today.regions - seen_regions)
    if new_regions:
        found.append(Anomaly("new_region", 40, {"day": today.day.isoformat(), "regions": new_regions,
                                                "known": sorted(seen_regions)}))
    seen_families = set().union(*(d.vm_families for d in earlier))
    new_sizes = sorted(today.vm_families - seen_families)
    gpu = [s for s in new_sizes if vm_family(s)[0].startswith("N")]
    high_core = [s for s in new_sizes if s not in gpu and vm_family(s)[1] >= HIGH_CORE_VCPUS]
    if gpu:
        found.append(Anomaly("gpu_vm_family", 75, {"day": today.day.isoformat(), "sizes": gpu}))
    if high_core:
        found.append(Anomaly("high_core_vm_family", 65, {"day": today.day.isoformat(), "sizes": high_core}))
    return found
