"""Dashboard pages through the test client: onboarding, catalog, purchase with review, subscriptions."""

from __future__ import annotations

import re

import pytest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import MicrosoftTenant
from accounts.roles import Role
from accounts.tests.factories import MembershipFactory, OrganizationFactory
from accounts.tests.helpers import verified_client
from core.tenancy import tenant_context
from core.timezones import organization_zone
from licensing.demo import DEMO_TENANT_ID, run_pending_operations
from licensing.models import GdapRelationship, Order, ProvisioningOperation, Subscription, TenantOnboarding
from licensing.selectors import operation_timeline

from .conftest import offer
from .factories import PriceFactory, SeatBatchFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def url(name, org, *args):
    return reverse(f"licensing:{name}", args=[org.slug, *args])


def test_tenant_page_offers_create_or_link(client):
    member = MembershipFactory(role=Role.OWNER)
    page = verified_client(client, member.user).get(url("tenant", member.organization))
    assert page.status_code == 200
    assert url("tenant_create", member.organization) in page.content.decode()
    assert url("tenant_link", member.organization) in page.content.decode()


def test_viewer_cannot_open_the_catalog_and_strangers_get_404(client):
    viewer = MembershipFactory(role=Role.VIEWER)
    verified_client(client, viewer.user)
    assert client.get(url("catalog", viewer.organization)).status_code == 403
    other = SubscriptionFactory()
    assert client.get(url("subscription", viewer.organization, other.pk)).status_code == 404


def test_catalog_filters_and_product_review(client):
    member = MembershipFactory(role=Role.LICENSE_ADMIN)
    price = PriceFactory(availability__sku__product__title="Power BI Pro",
                         availability__sku__product__family="Power Platform")
    PriceFactory(availability__sku__product__title="Exchange Online (Plan 1)",
                 availability__sku__product__family="Exchange")
    verified_client(client, member.user)
    page = client.get(url("catalog", member.organization), {"family": "Power Platform"}).content.decode()
    assert "Power BI Pro" in page and "Exchange Online" not in page
    product = price.availability.sku.product
    review = client.post(url("product", member.organization, product.pk),
                         {"offer": price.pk, "quantity": 3, "auto_renew": "on", "step": "review"})
    assert review.status_code == 200
    body = review.content.decode()
    assert 'id="order-review"' in body and "confirm-order" in body
    # Not linked yet: confirming says what to do instead of failing.
    refused = client.post(url("product", member.organization, product.pk),
                          {"offer": price.pk, "quantity": 3, "auto_renew": "on", "step": "confirm"})
    assert refused.status_code == 400 and "Link or create your Microsoft tenant" in refused.content.decode()


def test_the_catalog_page_quotes_its_offers_at_once_not_one_by_one(client, settings):
    # Each offer's price reads the organisation's billing profile and margin rules; read per offer, a page
    # of 25 products ran some 200 statements. Now a page costs the same statements whatever its length.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.LICENSING_DEFAULT_MARGIN_PERCENT = 10
    member = MembershipFactory(role=Role.LICENSE_ADMIN)
    verified_client(client, member.user)
    statements = {}
    for products in (2, 12):
        while PriceFactory._meta.model.objects.count() < products:
            PriceFactory(availability__sku__product__family="Office 365")
        client.get(url("catalog", member.organization))  # the first visit also writes the session
        with CaptureQueriesContext(connection) as captured:
            page = client.get(url("catalog", member.organization)).content.decode()
        statements[products] = len(captured.captured_queries)
        assert page.count("24.20") >= products
    assert statements[2] == statements[12]


def test_subscription_page_shows_windows_and_simulator(client):
    subscription = SubscriptionFactory()
    member = MembershipFactory(organization=subscription.organization, role=Role.LICENSE_ADMIN)
    with tenant_context(subscription.organization):
        SeatBatchFactory(subscription=subscription, quantity=10)
    verified_client(client, member.user)
    page = client.get(url("subscription", member.organization, subscription.pk)).content.decode()
    assert 'id="cancel-window"' in page and "left" in page and 'id="refundable-seats">10' in page
    simulated = client.get(url("subscription_simulate", member.organization, subscription.pk), {"seats-quantity": 7})
    assert "3</strong> seats refunded" in simulated.content.decode()


def test_the_subscription_pages_forms_each_have_their_own_field_names_and_ids(client):
    """The seat change and the next-term change both have a quantity: each form has its own prefix, so
    every id is unique, each label names its own input, and each view reads its own fields."""
    subscription = SubscriptionFactory()
    org = subscription.organization
    member = MembershipFactory(organization=org, role=Role.LICENSE_ADMIN)
    with tenant_context(org):
        SeatBatchFactory(subscription=subscription, quantity=10)
    verified_client(client, member.user)
    page = client.get(url("subscription", org, subscription.pk)).content.decode()

    ids = re.findall(r'\sid="([^"]+)"', page)
    assert sorted({i for i in ids if ids.count(i) > 1}) == []
    for name, label in (("seats-quantity", "New number of seats"), ("renewal-quantity", "Seats at renewal")):
        assert re.search(rf'<label class="field-label" for="id_{name}">{label}\b', page), name
        assert re.search(rf'<input[^>]*\sname="{name}"[^>]*\sid="id_{name}"', page), name
    assert "?seats-quantity=0" in page  # the cancel section's refund asks the simulator by the same name

    def operations(kind):
        with tenant_context(org):
            return list(ProvisioningOperation.objects.for_org(org).filter(kind=kind))

    # A field sent under the other form's name (or none) is not this form's: nothing is queued.
    client.post(url("subscription_quantity", org, subscription.pk), {"quantity": 12, "renewal-quantity": 12})
    assert operations("subscription.set_quantity") == []
    client.post(url("subscription_quantity", org, subscription.pk), {"seats-quantity": 12})
    assert [op.payload["quantity"] for op in operations("subscription.set_quantity")] == [12]

    other = SubscriptionFactory(organization=org)  # the first one now has a change in flight
    client.post(url("subscription_schedule", org, other.pk),
                {"quantity": 8, "term_duration": "P1Y", "billing_cycle": "monthly"})
    assert operations("subscription.schedule") == []
    client.post(url("subscription_schedule", org, other.pk),
                {"renewal-quantity": 8, "renewal-term_duration": "P1Y", "renewal-billing_cycle": "monthly"})
    [scheduled] = operations("subscription.schedule")
    assert scheduled.payload["instructions"]["quantity"] == 8


@pytest.mark.emulator
def test_link_request_shows_the_approval_link(client, control):
    member = MembershipFactory(role=Role.OWNER)
    verified_client(client, member.user)
    response = client.post(url("tenant_link", member.organization),
                           {"tenant_id": DEMO_TENANT_ID, "company_name": "Fabrikam"})
    assert response.status_code == 302
    run_pending_operations(member.organization)
    page = client.get(url("tenant", member.organization)).content.decode()
    with tenant_context(member.organization):
        relationship = GdapRelationship.objects.get()
    assert relationship.status == GdapRelationship.Status.APPROVAL_PENDING
    assert 'id="gdap-approval-link"' in page and relationship.ms_relationship_id in page
    check = client.get(url("tenant_domain_check", member.organization), {"domain_prefix": "fabrikamdemo"})
    assert "already taken" in check.content.decode()


@pytest.mark.emulator
def test_buy_through_the_pages_and_watch_the_timeline(client, ready, django_capture_on_commit_callbacks):
    verified_client(client, ready.user)
    org = ready.organization
    price = offer()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("product", org, price.availability.sku.product.pk),
                               {"offer": price.pk, "quantity": 10, "auto_renew": "on", "step": "confirm"})
    assert response.status_code == 302
    with tenant_context(org):
        order = Order.objects.get()
    page = client.get(url("order", org, order.pk)).content.decode()
    assert order.status == Order.Status.COMPLETED
    assert 'data-step="seats_visible"' in page and "is-done" in page
    with tenant_context(org):
        subscription = Subscription.objects.get(order=order)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url("subscription_cancel", org, subscription.pk))
    with tenant_context(org):
        assert Subscription.objects.get(pk=subscription.pk).status == Subscription.Status.DELETED


def _new_tenant_with_credentials(organization) -> None:
    with tenant_context(organization):
        tenant = MicrosoftTenant.objects.create(organization=organization)
        TenantOnboarding.objects.create(
            organization=organization, microsoft_tenant=tenant, mode=TenantOnboarding.Mode.CREATE,
            domain="contosonew.onmicrosoft.com", company_name="Contoso", initial_admin_username="admin@contosonew",
            initial_admin_password="Temp-Pa55-word!",
        )


@pytest.mark.parametrize("role", [Role.VIEWER, Role.BILLING_ADMIN])
def test_the_new_tenants_admin_password_is_not_shown_to_roles_that_cannot_manage_it(client, role):
    member = MembershipFactory(role=role)
    _new_tenant_with_credentials(member.organization)
    page = verified_client(client, member.user).get(url("tenant", member.organization)).content.decode()
    assert "Temp-Pa55-word!" not in page and "?reveal=1" not in page


def test_the_new_tenants_admin_password_needs_a_recent_second_factor(client):
    member = MembershipFactory(role=Role.LICENSE_ADMIN)
    _new_tenant_with_credentials(member.organization)
    verified_client(client, member.user, recent_mfa=False)
    page = client.get(url("tenant", member.organization)).content.decode()
    assert "Temp-Pa55-word!" not in page and "?reveal=1" in page
    reveal = client.get(url("tenant", member.organization) + "?reveal=1")
    assert reveal.status_code == 302 and reverse("accounts:mfa_verify") in reveal["Location"]
    verified_client(client, member.user)
    assert "Temp-Pa55-word!" in client.get(url("tenant", member.organization) + "?reveal=1").content.decode()


def test_the_timeline_shows_each_milestone_as_a_readable_time_in_the_organisations_zone():
    operation = ProvisioningOperation(milestones={"submitted": "2025-03-04T15:30:00+00:00"})
    organization = OrganizationFactory(time_zone="Europe/Berlin")
    html = render_to_string("licensing/_timeline.html", {"timeline": operation_timeline(operation)})
    with timezone.override(organization_zone(organization)):
        local = render_to_string("licensing/_timeline.html", {"timeline": operation_timeline(operation)})
    assert "4 Mar 2025, 15:30" in html
    assert "4 Mar 2025, 16:30" in local and 'datetime="2025-03-04T16:30:00+01:00"' in local


@pytest.mark.emulator
def test_confirming_the_same_review_twice_places_one_order(client, ready, django_capture_on_commit_callbacks):
    verified_client(client, ready.user)
    org = ready.organization
    price = offer()
    product = price.availability.sku.product
    review = client.post(url("product", org, product.pk),
                         {"offer": price.pk, "quantity": 2, "auto_renew": "on", "step": "review"})
    key = re.search(r'name="idempotency_key" value="([0-9a-f-]{36})"', review.content.decode()).group(1)
    confirm = {"offer": price.pk, "quantity": 2, "auto_renew": "on", "step": "confirm", "idempotency_key": key}
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(url("product", org, product.pk), confirm)
        second = client.post(url("product", org, product.pk), confirm)
    assert first.status_code == second.status_code == 302 and first["Location"] == second["Location"]
    with tenant_context(org):
        assert Order.objects.count() == 1
        assert Subscription.objects.count() == 1
