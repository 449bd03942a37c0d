"""The seat invariant as a property: random sequences of assign, unassign, reduce (with and without releasing
users), cancel, schedule, suspend, Microsoft carrying out the queue, and Microsoft-side drift.

Every portal-initiated step must leave licenses held <= seats purchased (or, after a Microsoft-side breach,
never make the excess larger); every Microsoft-side breach must be flagged by the reconcile's check, and
the flag must clear once resolved. The real services and the real outbox handlers run; only the two wire
calls are replaced: Graph's $batch answers every item with success, Partner Center answers from the
subscription's row with the change applied (as the emulator would, without HTTP per step).
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from core.audit import Actor
from core.tenancy import tenant_context
from licensing.microsoft.resources import BatchItemResult
from licensing.microsoft.resources import Subscription as RemoteSubscription
from licensing.models import LicenseAssignment, ProvisioningOperation, SeatBatch, Subscription, TenantSku
from licensing.nce import RuleViolation
from licensing.provisioning import operation_execute
from licensing.selectors.seats import seats_held, seats_purchased
from licensing.selectors.tallies import tally_drift
from licensing.selectors.usage import seat_pools
from licensing.services import assignments as assignment_services
from licensing.services import subscriptions as subscription_services
from licensing.services.assignments import AssignmentRefused, SeatsExhausted
from licensing.services.seats import seat_pools_flag_over_assigned

from .core.factories import DirectoryUserFactory, SkuFactory, SubscriptionFactory, TenantSkuFactory

pytestmark = pytest.mark.django_db

State = LicenseAssignment.State
ACTOR = Actor.system("property-test")
USERS = 14


class FakeGraph:
    def batch(self, requests, request_id, subject_ids=()):
        return [BatchItemResult(key=r["id"], status=204, body=None) for r in requests]


def _remote(subscription: Subscription, **changes) -> RemoteSubscription:
    """Partner Center's answer: the subscription as it is, with ``changes`` applied."""
    status = changes.get("status", subscription.status)
    quantity = changes.get("quantity", subscription.quantity)
    details = []
    if status == Subscription.Status.ACTIVE:
        for batch in subscription.seat_batches.filter(refundable_until__gt=timezone.now()):
            details.append({"quantity": min(quantity, batch.quantity),
                            "allowedUntilDateTime": batch.refundable_until.isoformat()})
    raw = {
        "id": subscription.ms_subscription_id, "offerId": subscription.catalog_item_id,
        "offerName": subscription.product_title, "quantity": quantity, "status": status,
        "autoRenewEnabled": changes.get("auto_renew", subscription.auto_renew if status == "active" else False),
        "termDuration": subscription.term_duration, "billingCycle": subscription.billing_cycle,
        "commitmentEndDate": subscription.commitment_end.isoformat(),
        "cancellationAllowedUntilDate": subscription.cancellation_allowed_until.isoformat(),
        "effectiveStartDate": subscription.start_date.isoformat(),
        "refundableQuantity": {"details": details},
    }
    if "scheduled" in changes:
        raw["scheduledNextTermInstructions"] = changes["scheduled"]
    elif subscription.scheduled_next_term:
        raw["scheduledNextTermInstructions"] = {"quantity": subscription.scheduled_next_term["quantity"],
                                                "product": {"termDuration": subscription.term_duration,
                                                            "billingCycle": subscription.billing_cycle}}
    return RemoteSubscription.from_json(raw)


class FakePartnerCenter:
    def _sub(self, subscription_id):
        return Subscription.objects.get(ms_subscription_id=subscription_id)

    def set_quantity(self, *, customer_id, subscription_id, quantity, request_id):
        return _remote(self._sub(subscription_id), quantity=quantity, scheduled=None)

    def cancel_subscription(self, *, customer_id, subscription_id, request_id):
        return _remote(self._sub(subscription_id), status="deleted")

    def suspend_subscription(self, *, customer_id, subscription_id, request_id):
        return _remote(self._sub(subscription_id), status="suspended", auto_renew=False)

    def update_subscription(self, *, customer_id, subscription_id, request_id, operation, changes):
        return _remote(self._sub(subscription_id), scheduled=changes.get("scheduledNextTermInstructions"))


class FakeClient:
    partner_center = FakePartnerCenter()


class SeatMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        sku = SkuFactory(minimum_quantity=1)
        self.pool = TenantSkuFactory(sku_id=sku.provisioning_id, purchased=0)
        self.org = self.pool.organization
        now = timezone.now()
        self.subscriptions = []
        for quantity in (6, 4):
            sub = SubscriptionFactory(organization=self.org, sku=sku, quantity=quantity, start_date=now)
            SeatBatch.objects.create(organization=self.org, subscription=sub, source=SeatBatch.Source.PURCHASE,
                                     quantity=quantity, added_at=now, refundable_until=now + timedelta(days=7))
            self.subscriptions.append(sub)
        with tenant_context(self.org):
            TenantSku.objects.filter(pk=self.pool.pk).update(purchased=10)
        self.users = [DirectoryUserFactory(organization=self.org) for _ in range(USERS)]
        self.breached = False  # a Microsoft-side change has left more held than purchased at some point

    # --- reading the state ------------------------------------------------------------------------

    def excess(self) -> int:
        """Licenses held beyond the seats the active subscriptions hold now (the invariant as stated)."""
        with tenant_context(self.org):
            pool = TenantSku.objects.get(pk=self.pool.pk)
            return max(0, seats_held(self.org, pool) - seats_purchased(self.org, pool, in_flight=False))

    def portal_step(self, func, *args):
        before = self.excess()
        with tenant_context(self.org), contextlib.suppress(SeatsExhausted, AssignmentRefused, RuleViolation,
                                                           ValidationError):
            func(*args)
        after = self.excess()
        assert after <= before, f"a portal step raised the excess from {before} to {after}"
        if not self.breached:
            assert after == 0

    def holders(self, *states) -> list[LicenseAssignment]:
        with tenant_context(self.org):
            return list(LicenseAssignment.objects.for_org(self.org).filter(sku=self.pool, state__in=states)
                        .order_by("pk"))

    def fresh(self, index: int) -> Subscription:
        with tenant_context(self.org):
            return Subscription.objects.select_related("sku").get(pk=self.subscriptions[index].pk)

    # --- portal steps -----------------------------------------------------------------------------

    @rule(user=st.integers(0, USERS - 1))
    def assign(self, user):
        self.portal_step(lambda: assignment_services.license_assign(
            organization=self.org, user=self.users[user], sku=self.pool, actor=ACTOR))

    @rule(pick=st.integers(0, 100))
    def unassign(self, pick):
        held = self.holders(State.ASSIGNED, State.PENDING)
        if held:
            self.portal_step(lambda: assignment_services.license_unassign(
                organization=self.org, assignment=held[pick % len(held)], actor=ACTOR))

    @rule(index=st.integers(0, 1), quantity=st.integers(1, 8), release=st.integers(0, 4))
    def reduce(self, index, quantity, release):
        chosen = [a.pk for a in self.holders(State.ASSIGNED)[:release]]
        self.portal_step(lambda: subscription_services.subscription_change_quantity(
            subscription=self.fresh(index), actor=ACTOR, quantity=quantity, release=chosen,
            confirm_wipe_scheduled=True))

    @rule(index=st.integers(0, 1))
    def cancel(self, index):
        self.portal_step(lambda: subscription_services.subscription_cancel(subscription=self.fresh(index),
                                                                           actor=ACTOR))

    @rule(index=st.integers(0, 1))
    def suspend(self, index):
        self.portal_step(lambda: subscription_services.subscription_suspend(
            subscription=self.fresh(index), actor=ACTOR, reason="property test"))

    @rule(index=st.integers(0, 1), quantity=st.integers(1, 8))
    def schedule(self, index, quantity):
        self.portal_step(lambda: subscription_services.subscription_schedule_change(
            subscription=self.fresh(index), actor=ACTOR, quantity=quantity))

    @rule()
    def microsoft_carries_out_the_queue(self):
        """The worker runs every queued operation (each once; the machine calls this again for polls)."""
        before = self.excess()
        with tenant_context(self.org):
            pending = list(ProvisioningOperation.objects.for_org(self.org).filter(
                status__in=[ProvisioningOperation.Status.PENDING, ProvisioningOperation.Status.RUNNING])
                .order_by("created_at").values_list("pk", flat=True))
        for pk in pending:
            operation_execute(operation_id=pk, org_id=self.org.pk)
        after = self.excess()
        assert after <= before, f"carrying out the portal's queue raised the excess from {before} to {after}"

    # --- Microsoft-side changes -------------------------------------------------------------------

    def microsoft_changed(self):
        """The hourly reconcile's check runs; every breach is flagged, every resolution cleared."""
        excess = self.excess()
        if excess:
            self.breached = True
        with tenant_context(self.org):
            seat_pools_flag_over_assigned(organization=self.org)
            pool = TenantSku.objects.get(pk=self.pool.pk)
        assert (pool.over_assigned_since is not None) == bool(excess)
        assert pool.over_assigned_by == excess

    @rule(index=st.integers(0, 1), quantity=st.integers(0, 6))
    def partner_center_lowers_seats(self, index, quantity):
        """A change made in Partner Center directly, or a renewal at fewer seats."""
        sub = self.fresh(index)
        if sub.status == Subscription.Status.ACTIVE and quantity < sub.quantity:
            with tenant_context(self.org):
                Subscription.objects.filter(pk=sub.pk).update(quantity=quantity)
        self.microsoft_changed()

    @rule(index=st.integers(0, 1))
    def renewal_applies_the_schedule(self, index):
        sub = self.fresh(index)
        if sub.status == Subscription.Status.ACTIVE and sub.scheduled_next_term:
            with tenant_context(self.org):
                Subscription.objects.filter(pk=sub.pk).update(quantity=sub.scheduled_next_term["quantity"],
                                                              scheduled_next_term=None)
        self.microsoft_changed()

    @rule(index=st.integers(0, 1), status=st.sampled_from(["suspended", "expired"]))
    def microsoft_ends_or_suspends(self, index, status):
        """A suspension on Microsoft's side, or a term ending with auto-renew off."""
        with tenant_context(self.org):
            Subscription.objects.filter(pk=self.subscriptions[index].pk, status="active").update(status=status)
        self.microsoft_changed()

    @rule()
    def graph_reports_seats(self):
        """Graph's subscribedSkus catch up with the subscriptions (prepaidUnits)."""
        with tenant_context(self.org):
            total = sum(s.quantity for s in Subscription.objects.filter(sku__provisioning_id=str(self.pool.sku_id),
                                                                        status="active"))
            TenantSku.objects.filter(pk=self.pool.pk).update(purchased=total)
        self.microsoft_changed()

    @precondition(lambda self: self.breached)
    @rule()
    def customer_resolves_by_unassigning(self):
        """The way out after a breach: the customer releases the excess (the portal never does)."""
        for assignment in self.holders(State.ASSIGNED)[: self.excess()]:
            self.portal_step(lambda a=assignment: assignment_services.license_unassign(
                organization=self.org, assignment=a, actor=ACTOR))

    @invariant()
    def never_over_assigned_without_a_breach(self):
        if not self.breached:
            assert self.excess() == 0

    @invariant()
    def the_tallies_the_pages_read_equal_the_recount(self):
        # Decision 038: every step above writes assignments through the real services and outbox handlers.
        with tenant_context(self.org):
            assert tally_drift(self.org) == []
            held = next(p.assigned_count for p in seat_pools(self.org) if p.pk == self.pool.pk)
            assert held == seats_held(self.org, self.pool)


def test_every_portal_step_keeps_the_seat_invariant_and_every_microsoft_breach_is_flagged(monkeypatch):
    monkeypatch.setattr("licensing.services.assignments.graph_for", lambda organization: FakeGraph())
    monkeypatch.setattr("licensing.services.subscriptions.changes.default_client", lambda: FakeClient())
    monkeypatch.setattr("licensing.services.subscriptions.changes._customer_id", lambda organization_id: "cust")
    run_state_machine_as_test(SeatMachine, settings=settings(
        max_examples=30, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    ))


@pytest.fixture
def wire(monkeypatch):
    monkeypatch.setattr("licensing.services.assignments.graph_for", lambda organization: FakeGraph())
    monkeypatch.setattr("licensing.services.subscriptions.changes.default_client", lambda: FakeClient())
    monkeypatch.setattr("licensing.services.subscriptions.changes._customer_id", lambda organization_id: "cust")


@pytest.mark.parametrize("step, verb", [("suspend", "suspended"), ("cancel", "cancelled")])
def test_a_queued_suspension_or_cancellation_is_checked_again_when_the_worker_runs_it(wire, step, verb):
    """Found by the machine above: asked for while the other subscription's seats covered every license,
    carried out after Partner Center took those seats away. The worker must refuse, not strand licenses."""
    machine = SeatMachine()
    getattr(machine, step)(1)  # 4 of 10 seats; nothing is assigned yet, so it is allowed
    machine.assign(0)
    machine.assign(13)
    machine.partner_center_lowers_seats(0, 0)  # the 6-seat subscription drops to none at Microsoft
    machine.graph_reports_seats()
    machine.microsoft_carries_out_the_queue()  # asserts the queue did not raise the excess

    subscription = machine.fresh(1)
    assert subscription.status == Subscription.Status.ACTIVE and subscription.quantity == 4
    with tenant_context(machine.org):
        operation = ProvisioningOperation.objects.for_org(machine.org).get(kind=f"subscription.{step}")
    assert operation.status == ProvisioningOperation.Status.FAILED
    assert operation.last_error_code == "seats_assigned"
    assert f"The subscription was not {verb}." in operation.last_error
    assert machine.excess() == 0


def test_an_overridden_suspension_goes_ahead_when_the_worker_runs_it(wire):
    """A fraud response suspends with the seat check overridden (audited when asked): the worker's check
    honours that override, so the plan is suspended even though licenses need its seats by then."""
    machine = SeatMachine()
    with tenant_context(machine.org):
        subscription_services.subscription_suspend(subscription=machine.fresh(1), actor=ACTOR, reason="fraud",
                                                   override_reason="Azure fraud case 1")
    machine.assign(0)
    machine.assign(13)
    machine.partner_center_lowers_seats(0, 0)
    with tenant_context(machine.org):
        pending = list(ProvisioningOperation.objects.for_org(machine.org).filter(
            status=ProvisioningOperation.Status.PENDING).values_list("pk", flat=True))
    for pk in pending:
        operation_execute(operation_id=pk, org_id=machine.org.pk)
    assert machine.fresh(1).status == Subscription.Status.SUSPENDED
