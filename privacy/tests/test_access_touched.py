"""An access report lists the licenses and orders the person touched (orders they placed or approved,
assignments they asked for), in the role that names them, without other people's data."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.tests.factories import MembershipFactory
from core.tenancy import tenant_context
from licensing.models import LicenseAssignment, Order
from licensing.tests.core.factories import DirectoryUserFactory, PriceFactory, TenantSkuFactory
from privacy import access_report

pytestmark = pytest.mark.django_db


def _order(org, price, **people):
    return Order.objects.create(organization=org, price=price, sku=price.availability.sku,
                                catalog_item_id="CFQ7TTC0LH18:0001", product_title="Microsoft 365 Business Premium",
                                quantity=5, term_duration="P1Y",
                                billing_cycle="monthly", unit_price=Decimal("22.00"), total=Decimal("110.00"),
                                status=Order.Status.COMPLETED, **people)


def test_the_report_lists_orders_placed_and_approved_and_assignments_made():
    membership = MembershipFactory()
    user, org = membership.user, membership.organization
    colleague = MembershipFactory(organization=org).user
    price = PriceFactory()
    with tenant_context(org):
        placed = _order(org, price, requested_by=user)
        approved = _order(org, price, requested_by=colleague, approved_by=user)
        _order(org, price, requested_by=colleague)  # not theirs
        person = DirectoryUserFactory(organization=org, display_name="Ana Gracia")
        made = LicenseAssignment.objects.create(organization=org, user=person, sku=TenantSkuFactory(organization=org),
                                                state=LicenseAssignment.State.ASSIGNED, requested_by=user)
    sections = {s.key: s for s in access_report.access_sections(user)}
    orders = [row for batch in sections["touched-licensing.order"].iter_rows() for row in batch]
    assert {(r["id"], r["your_role"]) for r in orders} == {(str(placed.pk), "requested by"),
                                                           (str(approved.pk), "approved by")}
    assert orders[0]["product_title"] == "Microsoft 365 Business Premium" and orders[0]["total"] == "110.00"
    assignments = [row for batch in sections["touched-licensing.licenseassignment"].iter_rows() for row in batch]
    assert [(r["id"], r["your_role"], r["state"]) for r in assignments] == [(str(made.pk), "requested by", "assigned")]
    # Who got the license is the directory user's data, not the requester's: no link, no name.
    assert "user" not in assignments[0] and "Ana Gracia" not in repr(assignments)
