"""The core loop against the emulator over HTTPS: link a tenant, accept the MCA, buy, change, cancel."""

from __future__ import annotations

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
