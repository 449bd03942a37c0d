"""The Microsoft client against the real emulator over HTTPS: tokens, purchase, NCE windows, licences."""

from __future__ import annotations

import pytest

from accounts.tests.factories import OrganizationFactory
from core.models import Disclosure
from licensing.microsoft import errors
from licensing.microsoft.auth import GRAPH_SCOPE, PC_SCOPE
from licensing.microsoft.resources import LicenseChange
from licensing.microsoft.token_store import DatabaseTokenStore

from .microsoft_helpers import basic_offer, buy, new_customer, rid

pytestmark = [pytest.mark.emulator, pytest.mark.django_db]

def test_tokens_come_from_msal_and_are_shared_through_the_database_store(emulator, make_client):
    first = make_client(store=DatabaseTokenStore())
    token = first.tokens.app_token(tenant_id=first.partner_center.partner_tenant_id, scope=PC_SCOPE)
    assert token.count(".") == 2  # a JWT issued by the emulator's Entra endpoint
    assert first.tokens.app_token(tenant_id=first.partner_center.partner_tenant_id, scope=PC_SCOPE) == token

    # Another worker (fresh process state, same database) reuses the stored token: no second token request.
    second = make_client(store=DatabaseTokenStore())
    assert second.tokens.app_token(tenant_id=second.partner_center.partner_tenant_id, scope=PC_SCOPE) == token
    token_posts = emulator.requests_log(method="POST", path="*/oauth2/v2.0/token")
    assert len(token_posts) == 1
    assert "client_secret" not in token_posts[0]["body"] or "***" in token_posts[0]["body"]


def test_unconsented_customer_tenant_refuses_graph_token(ms):
    customer = new_customer(ms, OrganizationFactory(), consent=False)
    with pytest.raises(errors.AuthenticationFailed) as caught:
        ms.tokens.app_token(tenant_id=customer.id, scope=GRAPH_SCOPE)
    assert caught.value.code == "700016"


def test_purchase_end_to_end_shows_seats_in_graph_and_logs_disclosures(ms, emulator):
    organization = OrganizationFactory()
    customer = new_customer(ms, organization)
    assert customer.admin_user_name and customer.tenant_id == customer.id
    subscription = buy(ms, customer.id, quantity=5)

    assert subscription.status in ("active", "pending")
    assert subscription.quantity == 5
    assert subscription.auto_renew_enabled is True
    listed = list(ms.partner_center.iter_subscriptions(customer_id=customer.id))
    assert [s.id for s in listed] == [subscription.id]
    orders = ms.partner_center.list_orders(customer_id=customer.id)
    assert len(orders) == 1 and orders[0].lines[0].subscription_id == subscription.id

    _, sku = basic_offer(ms)
    skus = {s.sku_id: s for s in ms.graph.subscribed_skus(tenant_id=customer.id)}
    assert skus[sku.provisioning_id].enabled == 5
    assert skus[sku.provisioning_id].available == 5

    disclosures = Disclosure.objects.filter(organization=organization)
    assert sorted(disclosures.values_list("operation", flat=True)) == [
        "partner_center.agreements.accept",
        "partner_center.customers.create",
    ]
    create = disclosures.get(operation="partner_center.customers.create")
    assert create.recipient == Disclosure.Recipient.MICROSOFT
    assert set(create.categories) == {"identity", "contact", "billing", "tenant"}
    assert create.purpose == Disclosure.Purpose.PROVISIONING
    logged = emulator.requests_log(method="POST", path="/partnercenter/v1/customers")
    assert logged[-1]["headers"]["Ms-Requestid"] == create.request_id


def test_catalog_reads_record_no_disclosure(ms):
    basic_offer(ms)
    ms.partner_center.list_products(country="US")
    assert next(ms.partner_center.iter_price_sheet())["ProductId"]
    assert not Disclosure.objects.exists()


def test_checkout_without_customer_agreement_is_a_typed_error(ms):
    customer = new_customer(ms, OrganizationFactory(), mca=False)
    with pytest.raises(errors.CustomerAgreementMissing):
        buy(ms, customer.id)


def test_quantity_changes_inside_and_outside_the_seat_window(ms, emulator, make_client):
    customer = new_customer(ms, OrganizationFactory())
    subscription = buy(ms, customer.id, quantity=5)

    reduced = ms.partner_center.set_quantity(
        customer_id=customer.id, subscription_id=subscription.id, quantity=3, request_id=rid()
    )
    assert reduced.quantity == 3
    assert reduced.auto_renew_enabled is True  # always sent explicitly, so a quantity change keeps renewal on

    emulator.advance_clock(days=8)
    ms = make_client()  # tokens are stamped in emulator time
    with pytest.raises(errors.SeatDecreaseNotAllowed) as caught:
        ms.partner_center.set_quantity(customer_id=customer.id, subscription_id=subscription.id, quantity=2,
                                       request_id=rid())
    assert caught.value.code == "800090" and caught.value.status == 400
    increased = ms.partner_center.set_quantity(
        customer_id=customer.id, subscription_id=subscription.id, quantity=6, request_id=rid()
    )
    assert increased.quantity == 6


def test_cancellation_inside_and_outside_the_window(ms, emulator, make_client):
    customer = new_customer(ms, OrganizationFactory())
    early = buy(ms, customer.id, quantity=2)
    cancelled = ms.partner_center.cancel_subscription(customer_id=customer.id, subscription_id=early.id,
                                                      request_id=rid())
    assert cancelled.status == "deleted"

    late = buy(ms, customer.id, quantity=2)
    emulator.advance_clock(hours=169)
    ms = make_client()
    with pytest.raises(errors.CancellationWindowClosed):
        ms.partner_center.cancel_subscription(customer_id=customer.id, subscription_id=late.id, request_id=rid())
    assert ms.partner_center.get_subscription(customer_id=customer.id, subscription_id=late.id).status == "active"


def test_suspend_and_reactivate_restores_auto_renew(ms):
    customer = new_customer(ms, OrganizationFactory())
    subscription = buy(ms, customer.id, quantity=2)
    suspended = ms.partner_center.suspend_subscription(
        customer_id=customer.id, subscription_id=subscription.id, request_id=rid()
    )
    assert suspended.status == "suspended" and suspended.auto_renew_enabled is False
    active = ms.partner_center.reactivate_subscription(
        customer_id=customer.id, subscription_id=subscription.id, request_id=rid()
    )
    assert active.status == "active" and active.auto_renew_enabled is True


def test_license_assignment_and_its_errors(ms):
    organization = OrganizationFactory()
    customer = new_customer(ms, organization)
    buy(ms, customer.id, quantity=1)
    _, sku = basic_offer(ms)
    graph = ms.graph

    def user(name: str, location: str | None):
        return graph.create_user(
            organization=organization, tenant_id=customer.id, request_id=rid(), display_name=name,
            mail_nickname=name, user_principal_name=f"{name}@{customer.domain}", password="Xy!9-temporary-pass",
            usage_location=location,
        )

    nowhere = user("nowhere", None)
    with pytest.raises(errors.UsageLocationMissing):
        graph.assign_license(organization=organization, tenant_id=customer.id, user_id=nowhere.id,
                             add_sku_ids=[sku.provisioning_id], request_id=rid())

    first, second = user("first", "US"), user("second", "US")
    assigned = graph.assign_license(organization=organization, tenant_id=customer.id, user_id=first.id,
                                    add_sku_ids=[sku.provisioning_id], request_id=rid())
    assert assigned.assigned_sku_ids == [sku.provisioning_id]
    assert [d.sku_id for d in graph.license_details(tenant_id=customer.id, user_id=first.id)] == [sku.provisioning_id]

    with pytest.raises(errors.NotEnoughLicenses):
        graph.assign_license(organization=organization, tenant_id=customer.id, user_id=second.id,
                             add_sku_ids=[sku.provisioning_id], request_id=rid())
    absent_sku = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"  # Business Premium, never bought here
    with pytest.raises(errors.SkuNotInTenant):
        graph.assign_license(organization=organization, tenant_id=customer.id, user_id=second.id,
                             add_sku_ids=[absent_sku], request_id=rid())

    results = graph.assign_licenses(
        organization=organization, tenant_id=customer.id, request_id=rid(),
        changes=[LicenseChange(first.id, remove_sku_ids=[sku.provisioning_id]),
                 LicenseChange(nowhere.id, add_sku_ids=[sku.provisioning_id])],
    )
    assert results[0].ok and results[0].key == first.id
    assert isinstance(results[1].error, errors.UsageLocationMissing)

    assert graph.get_user(tenant_id=customer.id, user_key=first.id).assigned_sku_ids == []
    batch_log = Disclosure.objects.get(operation="graph.users.assign_license_batch")
    assert batch_log.subject_count == 2 and batch_log.categories == ["identity"]


def test_paging_through_a_thousand_users_streams_page_by_page(ms, emulator):
    customer = new_customer(ms, OrganizationFactory())
    total = emulator.bulk_users(customer.id, 1000)["total"]
    pages = list(ms.graph.iter_user_pages(tenant_id=customer.id, top=300))
    assert [len(p) for p in pages[:-1]] == [300] * (len(pages) - 1)
    ids = [u.id for page in pages for u in page]
    assert len(ids) == total >= 1000
    assert len(set(ids)) == len(ids)
