"""The NCE lifecycle against the emulator: seats, windows, cancel, auto-renew, next term, suspension, reconcile."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from core.audit import Actor
from core.tenancy import tenant_context
from licensing import demo
from licensing.models import ProvisioningOperation, SeatBatch, Subscription, SubscriptionEvent
from licensing.nce import RuleViolation
from licensing.services import subscriptions as services

pytestmark = [pytest.mark.emulator, pytest.mark.django_db]


@pytest.fixture
def bought(ready):
    subscription = demo.buy(organization=ready.organization, user=ready.user, catalog_id=demo.BUSINESS_BASIC,
                            quantity=10)
    return ready, subscription


def change(organization, func, **kwargs) -> ProvisioningOperation:
    with tenant_context(organization):
        operation = func(**kwargs)
    demo.run_pending_operations(organization)
    with tenant_context(organization):
        return ProvisioningOperation.objects.get(pk=operation.pk)


def fresh(subscription) -> Subscription:
    with tenant_context(subscription.organization_id):
        return Subscription.objects.get(pk=subscription.pk)


def test_add_then_remove_seats_within_window_and_refusal_after(bought):
    member, subscription = bought
    org, actor = member.organization, Actor.user(member.user)
    op = change(org, services.subscription_change_quantity, subscription=subscription, actor=actor, quantity=14)
    assert op.status == ProvisioningOperation.Status.SUCCEEDED, op.last_error
    subscription = fresh(subscription)
    assert subscription.quantity == 14
    with tenant_context(org):
        assert sorted(b.remaining for b in SeatBatch.objects.filter(subscription=subscription)) == [4, 10]
        plan = services.subscription_reduction_plan(subscription=subscription, new_quantity=11)
    assert plan.allowed and plan.seats_refunded == 3 and plan.refund_total > 0

    op = change(org, services.subscription_change_quantity, subscription=subscription, actor=actor, quantity=11)
    assert op.status == ProvisioningOperation.Status.SUCCEEDED, op.last_error
    assert fresh(subscription).quantity == 11
    with tenant_context(org):
        assert SubscriptionEvent.objects.filter(subscription=subscription, action="quantity_changed").count() == 2

    with time_machine.travel(timezone.now() + timedelta(days=8)), tenant_context(org):
        with pytest.raises(RuleViolation) as refused:
            services.subscription_change_quantity(subscription=fresh(subscription), actor=actor, quantity=10)
        assert refused.value.code == "seat_window_closed" and "next term" in str(refused.value)
        with pytest.raises(RuleViolation) as closed:
            services.subscription_cancel(subscription=fresh(subscription), actor=actor)
        assert closed.value.code == "cancellation_window_closed"


def test_cancel_within_window(bought):
    member, subscription = bought
    op = change(member.organization, services.subscription_cancel, subscription=subscription,
                actor=Actor.user(member.user))
    assert op.status == ProvisioningOperation.Status.SUCCEEDED, op.last_error
    assert fresh(subscription).status == Subscription.Status.DELETED


def test_schedule_next_term_and_the_wipe_warning(bought):
    member, subscription = bought
    org, actor = member.organization, Actor.user(member.user)
    op = change(org, services.subscription_schedule_change, subscription=subscription, actor=actor, quantity=6)
    assert op.status == ProvisioningOperation.Status.SUCCEEDED, op.last_error
    subscription = fresh(subscription)
    assert subscription.scheduled_next_term["quantity"] == 6

    with tenant_context(org), pytest.raises(RuleViolation) as warned:
        services.subscription_change_quantity(subscription=subscription, actor=actor, quantity=12)
    assert warned.value.code == "scheduled_changes_would_be_wiped"
    op = change(org, services.subscription_change_quantity, subscription=subscription, actor=actor, quantity=12,
                confirm_wipe_scheduled=True)
    assert op.status == ProvisioningOperation.Status.SUCCEEDED
    assert fresh(subscription).quantity == 12


def test_auto_renew_suspend_and_reactivate(bought):
    member, subscription = bought
    org, actor = member.organization, Actor.user(member.user)
    change(org, services.subscription_set_auto_renew, subscription=subscription, actor=actor, enabled=False)
    assert fresh(subscription).auto_renew is False
    change(org, services.subscription_set_auto_renew, subscription=fresh(subscription), actor=actor, enabled=True)

    with tenant_context(org), pytest.raises(RuleViolation):
        services.subscription_suspend(subscription=fresh(subscription), actor=Actor.system("fraud"), reason="")
    op = change(org, services.subscription_suspend, subscription=fresh(subscription), actor=Actor.system("fraud"),
                reason="Fraud alert 42")
    assert op.status == ProvisioningOperation.Status.SUCCEEDED, op.last_error
    suspended = fresh(subscription)
    assert suspended.status == Subscription.Status.SUSPENDED and suspended.suspension_reason == "Fraud alert 42"
    assert suspended.auto_renew is False  # Microsoft turns it off on suspension

    op = change(org, services.subscription_reactivate, subscription=suspended, actor=actor)
    assert op.status == ProvisioningOperation.Status.SUCCEEDED, op.last_error
    assert fresh(subscription).status == Subscription.Status.ACTIVE and fresh(subscription).auto_renew


def test_second_change_while_one_is_in_flight_is_refused(bought):
    member, subscription = bought
    org, actor = member.organization, Actor.user(member.user)
    with tenant_context(org):
        services.subscription_change_quantity(subscription=subscription, actor=actor, quantity=12)
        with pytest.raises(RuleViolation) as busy:
            services.subscription_set_auto_renew(subscription=subscription, actor=actor, enabled=False)
    assert busy.value.code == "change_in_progress"


def test_reconcile_imports_existing_subscriptions_and_records_drift(bought):
    member, subscription = bought
    org = member.organization
    with tenant_context(org):
        counts = services.subscription_reconcile(organization=org)
        # The emulator's seed bought Business Premium and Exchange for this tenant months ago.
        assert counts["imported"] == 2
        assert Subscription.objects.for_org(org).count() == 3
        Subscription.objects.filter(pk=subscription.pk).update(quantity=99, auto_renew=False)
        counts = services.subscription_reconcile(organization=org)
    assert counts["drifted"] == 1
    subscription = fresh(subscription)
    assert subscription.quantity == 10 and subscription.auto_renew  # Microsoft's view adopted
    assert subscription.drift["quantity"] == {"local": 99, "microsoft": 10}
    with tenant_context(org):
        assert SubscriptionEvent.objects.filter(subscription=subscription, action="reconcile_drift").exists()
