"""The core loop against the emulator over HTTPS: link a tenant, accept the MCA, buy, change, cancel."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from django.utils import timezone

from accounts.models import MicrosoftTenant
from accounts.roles import Role
from core.audit import Actor
from core.tenancy import tenant_context
from licensing import demo
from licensing.models import (
    CustomerAgreement,
    GdapRelationship,
    Order,
    Price,
    ProvisioningOperation,
    Subscription,
    TenantOnboarding,
)
from licensing.services import purchases
from licensing.services.onboarding import OnboardingError

pytestmark = [pytest.mark.emulator, pytest.mark.django_db]


def premium_price(term="P1Y", cycle="monthly") -> Price:
    return Price.objects.get(availability__sku__product__product_id="CFQ7TTC0LCHC", term_duration=term,
                             billing_cycle=cycle)


def test_link_existing_tenant_through_gdap_then_consent(linked):
    organization = linked.organization
    with tenant_context(organization):
        tenant = MicrosoftTenant.objects.for_org(organization).get()
        relationship = GdapRelationship.objects.for_org(organization).get()
        onboarding = TenantOnboarding.objects.for_org(organization).get()
    assert tenant.relationship_status == MicrosoftTenant.RelationshipStatus.ACTIVE
    assert str(tenant.tenant_id) == demo.DEMO_TENANT_ID
    assert relationship.status == GdapRelationship.Status.ACTIVE
    assert relationship.approval_url.endswith(relationship.ms_relationship_id)
    assert {r["name"] for r in relationship.roles} >= {"License Administrator"}
    assert relationship.ends_at > timezone.now()
    assert onboarding.status == TenantOnboarding.Status.COMPLETED
    assert onboarding.consent_status == TenantOnboarding.ConsentStatus.GRANTED
    # The domains come from Partner Center's customer record once the relationship is active.
    assert tenant.primary_domain == "fabrikamdemo.onmicrosoft.com"
    assert tenant.verified_domains[0] == tenant.primary_domain


def test_a_linked_tenant_partner_center_does_not_know_keeps_an_empty_domain(linked):
    from licensing.services.onboarding import tenant_domains_fill

    organization = linked.organization
    with tenant_context(organization):
        tenant = MicrosoftTenant.objects.for_org(organization).get()
        tenant.primary_domain, tenant.verified_domains = "", []
        tenant.partner_customer_id = "00000000-0000-4000-8000-000000000000"
        tenant.save()
        assert tenant_domains_fill(tenant=tenant) is False
        tenant.refresh_from_db()
    assert tenant.primary_domain == "" and tenant.verified_domains == []


def test_purchase_requires_agreement_then_completes_with_timeline(linked, django_capture_on_commit_callbacks):
    organization, user = linked.organization, linked.user
    with tenant_context(organization), pytest.raises(OnboardingError) as refused:
        purchases.order_place(organization=organization, actor=Actor.user(user), user=user, role=Role.OWNER,
                              price=premium_price(), quantity=10)
    assert refused.value.code == "agreement_required" and "Customer Agreement" in str(refused.value)

    demo.accept_demo_agreement(organization=organization, user=user, ip_address="203.0.113.9")
    with tenant_context(organization):
        agreement = CustomerAgreement.objects.for_org(organization).get()
    assert agreement.status == CustomerAgreement.Status.CONFIRMED, agreement.operation.last_error
    assert agreement.ip_address == "203.0.113.9" and agreement.accepted_by == user and agreement.template_id

    with django_capture_on_commit_callbacks(execute=True), tenant_context(organization):
        order = purchases.order_place(organization=organization, actor=Actor.user(user), user=user,
                                      role=Role.OWNER, price=premium_price(), quantity=10)
    with tenant_context(organization):
        order.refresh_from_db()
        operation = ProvisioningOperation.objects.for_org(organization).get(pk=order.operation_id)
        subscription = Subscription.objects.for_org(organization).get(order=order)
    assert operation.status == ProvisioningOperation.Status.SUCCEEDED, operation.last_error
    assert {"submitted", "accepted", "provisioned", "seats_visible"} <= set(operation.milestones)
    assert order.status == Order.Status.COMPLETED
    assert subscription.status == Subscription.Status.ACTIVE and subscription.quantity == 10
    assert subscription.cancellation_allowed_until > timezone.now()
    with tenant_context(organization):
        assert subscription.seat_batches.get().quantity == 10


def _checkouts(emulator) -> list[dict]:
    return [r for r in emulator.requests_log(method="POST") if r["path"].endswith("/checkout")]


def test_a_pending_order_whose_subscription_id_arrives_late_is_polled_to_completion(ready, emulator):
    """Microsoft's order is pending with no subscriptionId at first; the operation polls (no second
    checkout) and the timeline says how far provisioning has got."""
    from django.template.loader import render_to_string

    from licensing.provisioning import operation_execute
    from licensing.selectors import operation_timeline

    organization, user = ready.organization, ready.user
    emulator.update_settings(orderProvisioningSeconds=60, orderProvisioningTailSeconds=0)
    with tenant_context(organization):
        order = purchases.order_place(organization=organization, actor=Actor.user(user), user=user,
                                      role=Role.OWNER, price=premium_price(), quantity=3)
    emulator.clear_requests_log()
    operation = operation_execute(operation_id=order.operation_id, org_id=organization.pk)
    assert operation.status == ProvisioningOperation.Status.PENDING, operation.last_error
    assert operation.polls == 1 and operation.next_attempt_at is not None
    assert "accepted" in operation.milestones and "subscription_created" not in operation.milestones
    assert operation.checkpoint["lines_ready"] == [0, 1]
    with tenant_context(organization):
        assert not Subscription.objects.for_org(organization).filter(order=order).exists()
        order.refresh_from_db()
    assert order.status == Order.Status.SUBMITTED
    steps = {s["key"]: s for s in operation_timeline(operation)}
    assert steps["accepted"]["done"] and not steps["provisioned"]["done"]
    assert steps["provisioned"]["detail"] == "0 of 1 order lines ready"
    html = render_to_string("licensing/_timeline.html", {"timeline": operation_timeline(operation)})
    assert "0 of 1 order lines ready" in html

    # A poll before Microsoft is done changes nothing and checks out nothing again.
    emulator.advance_clock(seconds=30)
    operation = operation_execute(operation_id=order.operation_id, org_id=organization.pk)
    assert operation.status == ProvisioningOperation.Status.PENDING and operation.polls == 2

    emulator.advance_clock(seconds=31)
    operation = operation_execute(operation_id=order.operation_id, org_id=organization.pk)
    assert operation.status == ProvisioningOperation.Status.SUCCEEDED, operation.last_error
    assert {"accepted", "subscription_created", "provisioned", "seats_visible"} <= set(operation.milestones)
    assert operation.checkpoint["lines_ready"] == [1, 1]
    with tenant_context(organization):
        order.refresh_from_db()
        subscription = Subscription.objects.for_org(organization).get(order=order)
    assert order.status == Order.Status.COMPLETED and order.ms_order_id == operation.result["ms_order_id"]
    assert [subscription.ms_subscription_id] == operation.result["subscriptions"]
    assert subscription.status == Subscription.Status.ACTIVE and subscription.quantity == 3
    assert len(_checkouts(emulator)) == 1
    steps = {s["key"]: s for s in operation_timeline(operation)}
    assert all(s["done"] for s in steps.values()) and steps["provisioned"]["detail"] == ""


def test_a_partially_provisioned_order_waits_for_its_last_line(ready, emulator):
    """Lines of one Microsoft order provision at different times: the order is not done until all are."""
    from licensing.microsoft.client import default_client
    from licensing.microsoft.resources import CartLine
    from licensing.provisioning import OperationInProgress
    from licensing.services.purchases import _await_provisioning

    organization = ready.organization
    emulator.update_settings(orderProvisioningSeconds=10, orderProvisioningTailSeconds=0)
    with tenant_context(organization):
        customer_id = MicrosoftTenant.objects.for_org(organization).get().partner_customer_id
    item = premium_price().availability.catalog_item_id
    pc = default_client().partner_center
    cart = pc.create_cart(customer_id=customer_id, request_id=str(uuid.uuid4()), lines=[
        CartLine(catalog_item_id=item, quantity=2, term_duration="P1Y", billing_cycle="monthly",
                 friendly_name="first")])
    first = pc.checkout_cart(customer_id=customer_id, cart_id=cart.id, request_id=str(uuid.uuid4())).orders[0]
    emulator.update_settings(orderProvisioningSeconds=100)
    cart = pc.create_cart(customer_id=customer_id, request_id=str(uuid.uuid4()), lines=[
        CartLine(catalog_item_id=item, quantity=4, term_duration="P1Y", billing_cycle="monthly",
                 friendly_name="second")])
    second = pc.checkout_cart(customer_id=customer_id, cart_id=cart.id, request_id=str(uuid.uuid4())).orders[0]
    emulator.advance_clock(seconds=11)
    done, waiting = (pc.get_order(customer_id=customer_id, order_id=o.id) for o in (first, second))
    assert done.status == "completed" and waiting.status == "pending"

    # One order made of a provisioned line and a line still waiting for its subscription id.
    partial = replace(waiting, status="pending", lines=[*done.lines, *waiting.lines])
    remotes = list(pc.iter_subscriptions(customer_id=customer_id))
    operation = ProvisioningOperation(organization=organization, kind="order.checkout", checkpoint={},
                                      milestones={})
    with pytest.raises(OperationInProgress, match="1 of 2 order lines"):
        _await_provisioning(operation, partial, remotes)
    assert operation.checkpoint["lines_ready"] == [1, 2] and "subscription_created" not in operation.milestones

    emulator.advance_clock(seconds=90)
    waiting = pc.get_order(customer_id=customer_id, order_id=second.id)
    remotes = list(pc.iter_subscriptions(customer_id=customer_id))
    whole = replace(waiting, lines=[*done.lines, *waiting.lines])
    _await_provisioning(operation, whole, remotes)
    assert operation.checkpoint["lines_ready"] == [2, 2] and "subscription_created" in operation.milestones
