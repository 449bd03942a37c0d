"""The licensing API through the test client: catalog, purchase, changes, operations, tenancy and roles."""

from __future__ import annotations

import pytest

from accounts.roles import Role
from accounts.tests.api_support import api_client_for
from accounts.tests.factories import OrganizationFactory
from core.tenancy import tenant_context
from licensing import demo
from licensing.models import Order, ProvisioningOperation, Subscription

from .conftest import offer
from .factories import PriceFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def test_products_list_filters_and_prices_with_margin(settings):
    settings.LICENSING_DEFAULT_MARGIN_PERCENT = 10
    price = PriceFactory(availability__sku__product__title="Office 365 E3",
                         availability__sku__product__family="Office 365")
    PriceFactory(availability__sku__product__title="Visio Plan 1",
                 availability__sku__product__family="Project and Visio", term_duration="P1M")
    client = api_client_for(OrganizationFactory(), Role.VIEWER)
    body = client.get("/api/v1/products/", {"family": "Office 365"}).json()
    assert [p["title"] for p in body["results"]] == ["Office 365 E3"]
    offered = body["results"][0]["offers"][0]
    assert offered["unit_price"] == "24.20" and "one year" in offered["explanation"]
    assert [p["title"] for p in client.get("/api/v1/products/", {"term": "P1M"}).json()["results"]] == ["Visio Plan 1"]
    assert client.get("/api/v1/products/", {"search": "visio"}).json()["count"] == 1
    detail = client.get(f"/api/v1/products/{price.availability.sku.product.pk}/")
    assert detail.status_code == 200 and detail.json()["title"] == "Office 365 E3"
    assert client.get("/api/v1/products/not-a-uuid/").status_code == 404


def test_subscriptions_are_scoped_and_writes_need_the_role():
    mine = SubscriptionFactory()
    SubscriptionFactory()  # another organisation's
    viewer = api_client_for(mine.organization, Role.VIEWER)
    listed = viewer.get("/api/v1/subscriptions/").json()
    assert [s["id"] for s in listed["results"]] == [str(mine.pk)]
    other = SubscriptionFactory()
    assert viewer.get(f"/api/v1/subscriptions/{other.pk}/").status_code == 404
    refused = viewer.patch(f"/api/v1/subscriptions/{mine.pk}/", {"quantity": 12}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"]


def test_bad_change_input_is_a_clear_400():
    subscription = SubscriptionFactory()
    client = api_client_for(subscription.organization, Role.LICENSE_ADMIN)
    response = client.patch(f"/api/v1/subscriptions/{subscription.pk}/", {"quantity": 2, "auto_renew": True},
                            format="json")
    assert response.status_code == 400
    with tenant_context(subscription.organization):
        assert not ProvisioningOperation.objects.exists()


@pytest.mark.emulator
def test_buy_reduce_and_cancel_through_the_api(ready, django_capture_on_commit_callbacks):
    org = ready.organization
    client = api_client_for(org, Role.OWNER)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/subscriptions/", {"offer_id": str(offer().pk), "quantity": 10},
                               format="json", HTTP_IDEMPOTENCY_KEY="buy-premium-1")
    assert response.status_code == 202, response.content
    body = response.json()
    replay = client.post("/api/v1/subscriptions/", {"offer_id": str(offer().pk), "quantity": 10}, format="json",
                         HTTP_IDEMPOTENCY_KEY="buy-premium-1")
    assert replay.json()["order_id"] == body["order_id"]
    with tenant_context(org):
        assert Order.objects.count() == 1
        subscription = Subscription.objects.get(order_id=body["order_id"])
    operation = client.get(f"/api/v1/provisioning-operations/{body['operation']['id']}/").json()
    assert operation["status"] == "succeeded" and "seats_visible" in operation["milestones"]

    detail = client.get(f"/api/v1/subscriptions/{subscription.pk}/").json()
    assert detail["quantity"] == 10 and detail["cancellation_window_open"] and detail["refundable_quantity"] == 10

    with django_capture_on_commit_callbacks(execute=True):
        reduced = client.patch(f"/api/v1/subscriptions/{subscription.pk}/", {"quantity": 7}, format="json")
    assert reduced.status_code == 202
    assert client.get(f"/api/v1/subscriptions/{subscription.pk}/").json()["quantity"] == 7

    with django_capture_on_commit_callbacks(execute=True):
        cancelled = client.post(f"/api/v1/subscriptions/{subscription.pk}/cancel/")
    assert cancelled.status_code == 202
    assert client.get(f"/api/v1/subscriptions/{subscription.pk}/").json()["status"] == "deleted"


@pytest.mark.emulator
def test_purchase_before_agreement_is_a_409(linked):
    client = api_client_for(linked.organization, Role.OWNER)
    response = client.post("/api/v1/subscriptions/", {"offer_id": str(offer().pk), "quantity": 1}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "agreement_required"


def test_schema_documents_the_licensing_endpoints(client):
    schema = client.get("/api/schema/").content.decode()
    for path in ("/api/v1/products/", "/api/v1/subscriptions/{id}/cancel/", "/api/v1/subscriptions/{id}/schedule/",
                 "/api/v1/provisioning-operations/"):
        assert path in schema


def test_demo_module_names_real_offers():
    assert demo.BUSINESS_BASIC.count(":") == 1


def test_a_page_of_products_is_quoted_at_once_not_per_offer(settings):
    # The organisation's price terms (billing profile, margin rules) are read once for the whole page: the
    # same statements for two products as for twelve, each offer still priced.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.LICENSING_DEFAULT_MARGIN_PERCENT = 10
    client = api_client_for(OrganizationFactory(), Role.VIEWER)
    statements = {}
    for products in (2, 12):
        while len(client.get("/api/v1/products/").json()["results"]) < products:
            PriceFactory(availability__sku__product__family="Office 365")
        with CaptureQueriesContext(connection) as captured:
            body = client.get("/api/v1/products/").json()
        statements[products] = len(captured.captured_queries)
        assert {offer["unit_price"] for product in body["results"] for offer in product["offers"]} == {"24.20"}
    assert statements[2] == statements[12]


def test_a_product_is_quoted_at_once_whatever_its_number_of_offers(settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from .factories import AvailabilityFactory

    settings.LICENSING_DEFAULT_MARGIN_PERCENT = 10
    client = api_client_for(OrganizationFactory(), Role.VIEWER)
    first = PriceFactory(availability__sku__product__family="Office 365", term_duration="P1M")
    url = f"/api/v1/products/{first.availability.sku.product.pk}/"
    client.get(url)
    with CaptureQueriesContext(connection) as one:
        assert len(client.get(url).json()["offers"]) == 1
    for term, cycle in (("P1Y", "monthly"), ("P1Y", "annual")):
        PriceFactory(availability=first.availability, term_duration=term, billing_cycle=cycle)
    PriceFactory(availability=AvailabilityFactory(sku=first.availability.sku), term_duration="P3Y",
                 billing_cycle="annual")
    with CaptureQueriesContext(connection) as four:
        offers = client.get(url).json()["offers"]
    assert len(offers) == 4 and {offer["unit_price"] for offer in offers} == {"24.20"}
    assert len(four.captured_queries) == len(one.captured_queries)
