"""Reads of the assignment tallies (decision 038): seats held and failed per pool without counting every
assignment of the organisation, and the recount that checks them.

The tallies are kept by triggers in the assignment's own transaction (licensing/migrations/0013), so
within a transaction they agree with the rows it can see. A pool with no assignment yet has no tally.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count

from licensing.models import AssignmentTally, LicenseAssignment, TenantSku

STATES = AssignmentTally.STATES


def tallies_by_pool(organization) -> dict:
    """Pool pk -> its ``AssignmentTally``. One query, one row per pool."""
    return {t.sku_id: t for t in AssignmentTally.objects.for_org(organization)}


def recount_by_pool(organization) -> dict:
    """Pool pk -> {state: count}, counted from the assignments themselves: O(assignments). One query."""
    counts: dict = {}
    rows = (LicenseAssignment.objects.for_org(organization).order_by().values("sku_id", "state")
            .annotate(n=Count("pk")))
    for row in rows:
        counts.setdefault(row["sku_id"], dict.fromkeys(STATES, 0))[row["state"]] = row["n"]
    return counts


@dataclass(frozen=True)
class TallyDrift:
    pool_id: object
    state: str
    tallied: int
    counted: int


def tally_drift(organization) -> list[TallyDrift]:
    """Every (pool, state) whose tally differs from the recount; empty when they agree. Three queries."""
    tallies = tallies_by_pool(organization)
    counted = recount_by_pool(organization)
    pools = set(TenantSku.objects.for_org(organization).values_list("pk", flat=True))
    drift = []
    for pool_id in sorted(pools | set(tallies) | set(counted), key=str):
        tally = tallies.get(pool_id)
        have = tally.counts() if tally is not None else dict.fromkeys(STATES, 0)
        want = counted.get(pool_id, dict.fromkeys(STATES, 0))
        drift.extend(TallyDrift(pool_id, state, have[state], want[state])
                     for state in STATES if have[state] != want[state])
    return drift
