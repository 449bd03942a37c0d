"""Repairing the assignment tallies (decision 038) if they ever drift from the assignments.

They should not: triggers keep them in every writing transaction. Drift would mean a trigger was
disabled, a table restored without them, or a state added without its column; the periodic check and
``manage.py check_assignment_tallies`` report it, and ``--fix`` rewrites the tallies from a recount.
"""

from __future__ import annotations

import logging

from django.db import transaction

from accounts.selectors import organizations_across_tenants
from core.tenancy import tenant_context
from licensing.models import AssignmentTally, TenantSku
from licensing.selectors.tallies import STATES, TallyDrift, recount_by_pool, tally_drift

logger = logging.getLogger(__name__)


def repair_tallies(organization) -> int:
    """Rewrite the organisation's tallies from a recount, under the pools' locks; returns the (pool, state)
    pairs that were wrong. Call inside the organisation's tenant context."""
    with transaction.atomic():
        # The pools' row locks are what every assignment service takes first (the seat invariant), so no
        # assignment of this organisation changes between the recount and the write.
        list(TenantSku.objects.for_org(organization).select_for_update().order_by("pk").values_list("pk", flat=True))
        drift = tally_drift(organization)
        if not drift:
            return 0
        counted = recount_by_pool(organization)
        tallies = {t.sku_id: t for t in AssignmentTally.objects.for_org(organization).select_for_update()}
        for pool_id in {d.pool_id for d in drift}:
            want = counted.get(pool_id, dict.fromkeys(STATES, 0))
            tally = tallies.get(pool_id)
            if tally is None:
                AssignmentTally.objects.create(organization_id=_org_id(organization), sku_id=pool_id, **want)
            else:
                AssignmentTally.objects.for_org(organization).filter(pk=tally.pk).update(**want)
        logger.warning("assignment tallies repaired", extra={"organization": str(_org_id(organization)),
                                                             "drift": len(drift)})
        return len(drift)


def check_all_tallies(*, fix: bool = False) -> dict:
    """Organisation pk -> its drift, for every organisation whose tallies disagree with a recount (each read in
    its own tenant context); with ``fix``, each is repaired as it is found. O(assignments) in all: for the
    periodic check and the management command, never a page."""
    found: dict = {}
    for organization in organizations_across_tenants():
        with tenant_context(organization):
            drift: list[TallyDrift] = tally_drift(organization)
            if drift:
                logger.error("assignment tallies drifted", extra={"organization": str(organization.pk),
                                                                  "drift": len(drift), "fixed": fix})
                found[organization.pk] = drift
                if fix:
                    repair_tallies(organization)
    return found


def _org_id(organization):
    return getattr(organization, "pk", organization)
