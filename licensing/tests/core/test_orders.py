"""Owner approval of orders (threshold and its currency), who may decide, and failed orders on the record."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.roles import Role
from accounts.tests.factories import MembershipFactory, UserFactory
from accounts.tests.helpers import verified_client
from core.audit import Actor, AuditEvent
from core.tenancy import tenant_context
from licensing import pricing
from licensing.models import Order
from licensing.provisioning import operation_mark_failed
from licensing.services import purchases
from licensing.services.settings import licensing_settings_update

from .conftest import offer
from .factories import PriceFactory

pytestmark = pytest.mark.django_db


def set_threshold(organization, amount: str | None, currency: str = "USD") -> None:
    with tenant_context(organization):
        licensing_settings_update(organization=organization, actor=Actor.system("test"), changes={
            "approval_threshold": Decimal(amount) if amount is not None else None, "currency": currency})


def quote(organization, price, quantity):
    with tenant_context(organization):
        return purchases.order_quote(organization=organization, price=price, quantity=quantity)


@pytest.fixture
def list_price_quotes():
    """Licensing's own pricing (list price plus the default margin, in the offer's currency), without the
    price lists billing registers: this rule is about comparing currencies, whatever the prices."""
    registered = pricing._resolver
    pricing.register_price_resolver(None)
    yield
    pricing.register_price_resolver(registered)


def test_the_threshold_is_compared_only_with_totals_in_its_own_currency(list_price_quotes):
    member = MembershipFactory(role=Role.LICENSE_ADMIN)
    org = member.organization
    usd = PriceFactory(list_price=Decimal("10.00"), currency="USD")
    eur = PriceFactory(list_price=Decimal("10.00"), currency="EUR")
    assert not quote(org, usd, 200).needs_approval  # no threshold: never
    set_threshold(org, "100.00", "USD")
    small, large = quote(org, usd, 1), quote(org, usd, 200)
    assert small.total <= Decimal("100.00") < large.total
    assert not small.needs_approval and large.needs_approval
    # EUR 11 cannot be compared with USD 100 without a rate: an owner decides.
    assert quote(org, eur, 1).needs_approval
    set_threshold(org, "100.00", "EUR")
    assert not quote(org, eur, 1).needs_approval and quote(org, usd, 1).needs_approval


def test_settings_page_lets_license_admins_change_reporting_but_not_the_approval_rule(client):
    admin = MembershipFactory(role=Role.LICENSE_ADMIN)
    org = admin.organization
    set_threshold(org, "100.00")
    verified_client(client, admin.user)
    page_url = reverse("licensing:licensing_settings", args=[org.slug])
    assert 'name="approval_threshold"' not in client.get(page_url).content.decode()
    response = client.post(page_url, {"approval_threshold": "", "currency": "EUR", "inactive_days": 60,
                                      "reminder_offsets": "14, 2", "email_notifications": ""})
    assert response.status_code == 302
    with tenant_context(org):
        from licensing.selectors import licensing_settings

        current = licensing_settings(org)
    assert (current.approval_threshold, current.currency) == (Decimal("100.00"), "USD")  # untouched
    assert (current.inactive_days, current.reminder_offsets, current.email_notifications) == (60, [14, 2], False)


@pytest.mark.emulator
def test_a_non_owner_member_is_refused_the_decision_and_a_stranger_does_not_find_it(client, ready):
    org = ready.organization
    set_threshold(org, "0.00")
    admin = MembershipFactory(organization=org, role=Role.LICENSE_ADMIN)
    with tenant_context(org):
        order = purchases.order_place(organization=org, actor=Actor.user(admin.user), user=admin.user,
                                      role=Role.LICENSE_ADMIN, price=offer(), quantity=1)
    assert order.status == Order.Status.AWAITING_APPROVAL
    decide = reverse("licensing:order_decision", args=[org.slug, order.pk, "approve"])
    verified_client(client, admin.user)
    assert client.get(reverse("licensing:order", args=[org.slug, order.pk])).status_code == 200
    assert client.post(decide).status_code == 403
    stranger = MembershipFactory(role=Role.OWNER)
    verified_client(client, stranger.user)
    assert client.post(reverse("licensing:order_decision", args=[stranger.organization.slug, order.pk,
                                                                 "approve"])).status_code == 404
    with tenant_context(org):
        assert Order.objects.get(pk=order.pk).status == Order.Status.AWAITING_APPROVAL


@pytest.mark.emulator
def test_a_failed_order_is_on_the_audit_record(ready):
    org = ready.organization
    with tenant_context(org):
        order = purchases.order_place(organization=org, actor=Actor.user(ready.user), user=ready.user,
                                      role=Role.OWNER, price=offer(), quantity=1)
        operation_mark_failed(operation=order.operation, actor=Actor.staff(UserFactory(is_staff=True)),
                              reason="Microsoft refused the tenant.")
        order.refresh_from_db()
        event = AuditEvent.objects.get(action="order.failed", target_id=str(order.pk))
    assert order.status == Order.Status.FAILED and order.failure_reason == "Microsoft refused the tenant."
    assert event.metadata["status"] == "failed"
