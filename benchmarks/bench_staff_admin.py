"""The cost of staff grants per admin request: the provisioning-operations changelist with the grant
check (grants read fresh, queryset scoped, view in the tenant context) and the audit write (one
chained event per organisation shown, its checkpoint after commit), against the same admin page
without them (benchmarks/staff_admin_site.py), same rows, same signed-in staff member, same run.
Goal: at most 1.2x (issue 10)."""

from __future__ import annotations

import time

from django.test import Client

from benchmarks.harness import Context, Result

REQUESTS = 30
ROUNDS = 5
ROWS = 100


def _per_request_ms(client: Client, path: str) -> float:
    client.get(path)  # warm-up
    start = time.perf_counter()
    for _ in range(REQUESTS):
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
    return (time.perf_counter() - start) / REQUESTS * 1000


def run(ctx: Context) -> list[Result]:
    from accounts.models import StaffRole
    from accounts.tests.factories import OrganizationFactory, StaffGrantFactory, UserFactory
    from accounts.tests.helpers import verified_client
    from core.models import AuditEvent
    from licensing.models import ProvisioningOperation

    org = OrganizationFactory(slug="bench-staff-admin")
    ProvisioningOperation.unscoped_objects.bulk_create(
        [ProvisioningOperation(organization=org, kind="order.checkout") for _ in range(ROWS)]
    )
    staff = UserFactory(is_staff=True, is_superuser=True)
    grant = StaffGrantFactory(staff=staff, organization=org, roles=[StaffRole.LICENSE_OPERATOR])
    client = verified_client(Client(), staff)
    granted_path = "/admin/licensing/provisioningoperation/"
    bare_path = "/bench/admin/licensing/provisioningoperation/"
    for path in (bare_path, granted_path):  # both pages list the same rows
        assert f"{ROWS} provisioning operations" in client.get(path).content.decode(), path

    before = AuditEvent.unscoped_objects.filter(action="staff.viewed_list").count()
    # Interleave the two, so drift on a shared machine hits both alike; keep each one's best round.
    granted, bare = [], []
    for round_number in range(ROUNDS):
        order = [(bare, bare_path), (granted, granted_path)]
        for timings, path in order if round_number % 2 else reversed(order):  # neither always goes first
            timings.append(_per_request_ms(client, path))
    written = AuditEvent.unscoped_objects.filter(action="staff.viewed_list").count() - before
    granted_requests = ROUNDS * (REQUESTS + 1)
    assert written == granted_requests, (written, granted_requests)  # one per granted page, none for the baseline
    ctx.say(f"{written} audit events written by {granted_requests} granted requests (grant {grant.pk})")
    return [
        Result(
            name=f"staff admin changelist ({ROWS} rows) with grant check + audit",
            figure=min(granted),
            baseline=min(bare),
            unit="ms/request",
            goal=1.2,
            note="baseline: the same admin without grants or audit, reading every organisation (pre-grant admin)",
        )
    ]
