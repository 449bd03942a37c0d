"""When Microsoft refuses a change: plain wording for the customer, the subscription re-read from
Partner Center so the page stops promising what Microsoft will not do, and seat batches that tell
removed seats from seats whose window merely closed."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from accounts.tests.helpers import verified_client
from core.audit import Actor
from core.tenancy import tenant_context
from licensing import demo, nce
from licensing.microsoft import errors as ms
from licensing.microsoft.client import reset_default_client
from licensing.microsoft.resources import Subscription as RemoteSubscription
from licensing.models import (
    DirectorySync,
    MicrosoftTokenCache,
    ProvisioningOperation,
    SeatBatch,
    Subscription,
    TenantSku,
)
from licensing.provisioning import OperationRefused
from licensing.refusals import failure_reason
from licensing.services import subscriptions as services
from licensing.tests.core.factories import SubscriptionFactory

from .test_subscription_lifecycle import bought, change, fresh  # noqa: F401  (fixture)

pytestmark = [pytest.mark.emulator, pytest.mark.django_db]


def forget_tokens() -> None:
    cache.clear()
    MicrosoftTokenCache.objects.all().delete()
    reset_default_client()


@pytest.mark.parametrize(("error", "words"), [
    (ms.SeatDecreaseNotAllowed("Subscription quantity cannot be decreased.", code="800090"),
     "Schedule the reduction for the next term"),
    (ms.CancellationWindowClosed("You have passed your 168-hour cancellation window.", code="900213"),
     "Turn off auto-renew"),
    (ms.NotEnoughLicenses("does not have any available licenses left", code="60012"), "Buy more seats"),
    (ms.CustomerAgreementMissing("MCA not accepted", code="13605"), "Accept it on the Microsoft tenant page"),
    (ms.InvalidRequest("quantity not allowed", code="900275"), "minimum and maximum"),
    (ms.Forbidden("Insufficient privileges", code="900308"), "GDAP"),
    (ms.TransientFailure("HTTP 503"), "Try again later"),
    (KeyError("subscription_id"), "on our side"),
])
def test_every_refusal_reads_as_plain_advice_without_microsofts_text(error, words):
    reason = failure_reason(error)
    assert words in reason
    assert len(reason) <= 300
    raw = getattr(error, "message", "")
    assert not raw or raw not in reason


def test_a_handlers_own_refusal_is_kept_as_written():
    assert failure_reason(OperationRefused("The offer is no longer sold.")) == "The offer is no longer sold."


def test_refused_seat_decrease_is_worded_plainly_and_the_subscription_is_reread(
    bought, emulator, django_capture_on_commit_callbacks, client,  # noqa: F811
):
    member, subscription = bought
    org, actor = member.organization, Actor.user(member.user)
    with tenant_context(org):
        assert services.subscription_reduction_plan(subscription=fresh(subscription), new_quantity=8).allowed
    # Microsoft's clock has moved past the 7-day window; ours still shows it open (stale until reconciled).
    emulator.advance_clock(days=8)
    forget_tokens()  # they are stamped in emulator time
    with django_capture_on_commit_callbacks(execute=True):
        op = change(org, services.subscription_change_quantity, subscription=subscription, actor=actor, quantity=8)
    assert op.status == ProvisioningOperation.Status.FAILED
    assert op.last_error_code in ("800090", "900214", "900257")  # Microsoft's code kept for staff
    assert "cannot be decreased" not in op.failure_reason
    assert op.failure_reason.startswith("No seats can be removed now")

    subscription = fresh(subscription)
    assert subscription.quantity == 10
    with tenant_context(org):
        batch = SeatBatch.objects.get(subscription=subscription)
        # The refresh closed the window without pretending any seat was removed.
        assert batch.refunded == 0 and batch.refundable_until <= timezone.now()
        assert not services.subscription_reduction_plan(subscription=subscription, new_quantity=8).allowed

    page = verified_client(client, member.user).get(reverse("licensing:subscription", args=[org.slug, subscription.pk]))
    html = page.content.decode()
    assert "Schedule the reduction for the next term" in html
    assert "cannot be decreased" not in html


def _remote(subscription: Subscription, *, quantity: int, windows: list[tuple]) -> RemoteSubscription:
    raw = {
        "id": subscription.ms_subscription_id, "offerId": subscription.catalog_item_id, "quantity": quantity,
        "status": "active", "autoRenewEnabled": True, "termDuration": subscription.term_duration,
        "billingCycle": subscription.billing_cycle,
        "refundableQuantity": {"totalQuantity": sum(q for _, q in windows), "details": [
            {"quantity": q, "allowedUntilDateTime": until.isoformat().replace("+00:00", "Z")} for until, q in windows
        ]},
    }
    return RemoteSubscription.from_json(raw)


def test_a_batch_microsoft_stops_listing_is_closed_not_removed(db):
    now = timezone.now()
    subscription = SubscriptionFactory(quantity=188, ms_subscription_id="sub-188", unit_price=Decimal("10"))
    org = subscription.organization
    with tenant_context(org):
        batch = SeatBatch.objects.create(organization=org, subscription=subscription,
                                         source=SeatBatch.Source.PURCHASE, quantity=188, added_at=now,
                                         refundable_until=nce.refund_window_end(now))
        until = batch.refundable_until
        # Two seats removed within the window: Microsoft lists 186 still refundable.
        services.subscription_apply_remote(subscription=subscription, remote=_remote(
            subscription, quantity=186, windows=[(until, 186)]), action="quantity_changed", actor_label="test")
        batch.refresh_from_db()
        assert (batch.remaining, batch.refunded) == (186, 2)
        # Then Microsoft stops listing the batch (its window closed early) while the quantity stays 186.
        services.subscription_apply_remote(subscription=subscription, remote=_remote(
            subscription, quantity=186, windows=[]), action="reconcile", actor_label="test")
        batch.refresh_from_db()
    assert (batch.remaining, batch.refunded) == (186, 2)
    assert batch.refundable_until <= timezone.now()


def test_a_batch_that_vanishes_with_its_seats_counts_them_removed(db):
    now = timezone.now()
    subscription = SubscriptionFactory(quantity=12, ms_subscription_id="sub-12", unit_price=Decimal("10"))
    org = subscription.organization
    with tenant_context(org):
        older = SeatBatch.objects.create(organization=org, subscription=subscription,
                                         source=SeatBatch.Source.PURCHASE, quantity=10,
                                         added_at=now - timedelta(days=2),
                                         refundable_until=nce.refund_window_end(now - timedelta(days=2)))
        newer = SeatBatch.objects.create(organization=org, subscription=subscription,
                                         source=SeatBatch.Source.ADDITION, quantity=2, added_at=now,
                                         refundable_until=nce.refund_window_end(now))
        # The two added seats were removed (outside the portal): Microsoft lists only the older batch.
        services.subscription_apply_remote(subscription=subscription, remote=_remote(
            subscription, quantity=10, windows=[(older.refundable_until, 10)]), action="reconcile",
            actor_label="test")
        newer.refresh_from_db()
        older.refresh_from_db()
    assert (newer.remaining, newer.refunded) == (0, 2)
    assert (older.remaining, older.refunded) == (10, 0)


def pool_for(subscription: Subscription) -> TenantSku | None:
    with tenant_context(subscription.organization_id):
        return TenantSku.objects.for_org(subscription.organization_id).filter(
            sku_id=subscription.sku.provisioning_id).first()


def test_checkout_and_seat_change_refresh_the_seat_pool_without_a_directory_sync(
    ready, django_capture_on_commit_callbacks,
):
    org = ready.organization
    with django_capture_on_commit_callbacks(execute=True):
        subscription = demo.buy(organization=org, user=ready.user, catalog_id=demo.BUSINESS_BASIC, quantity=10)
    pool = pool_for(subscription)
    assert pool is not None and pool.purchased == 10
    with django_capture_on_commit_callbacks(execute=True):
        op = change(org, services.subscription_change_quantity, subscription=subscription,
                    actor=Actor.user(ready.user), quantity=14)
    assert op.status == ProvisioningOperation.Status.SUCCEEDED, op.last_error
    assert pool_for(subscription).purchased == 14
    with tenant_context(org):
        assert not DirectorySync.objects.for_org(org).exists()  # seats only, not a user sync
