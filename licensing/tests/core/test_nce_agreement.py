"""The portal's refund simulator against the emulator running as a real HTTPS server.

For the same action at the same moment, the simulator's refundable seats and refund type match the
subscription's ``refundableQuantity`` and ``refundOptions``. Its refund total matches what the
emulator then credits in its billing lines. Each side computes with its own code (decision 010).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from accounts.models import MicrosoftTenant
from core.audit import Actor
from core.tenancy import tenant_context
from licensing import nce
from licensing.microsoft.client import default_client
from licensing.services import subscriptions as services

from .test_refusals import forget_tokens
from .test_subscription_lifecycle import bought, change, fresh  # noqa: F401  (fixture)

pytestmark = [pytest.mark.emulator, pytest.mark.django_db]


def emulator_now(emulator) -> datetime:
    return datetime.fromisoformat(emulator.session.get(emulator._url("/clock"), timeout=10).json()["now"])


def remote(org, subscription) -> dict:
    customer_id = MicrosoftTenant.objects.for_org(org).first().partner_customer_id
    return default_client().partner_center.get_subscription(
        customer_id=customer_id, subscription_id=subscription.ms_subscription_id).raw


def lines_for(subscription, charge_type: str) -> list[dict]:
    lines = [li for li in default_client().partner_center.iter_unbilled_line_items()
             if li["subscriptionId"] == subscription.ms_subscription_id and li["chargeType"] == charge_type]
    assert lines, f"no {charge_type} lines"
    return lines


def credited(subscription, charge_type: str) -> Decimal:
    """What the emulator gave back for one kind of change: its credits less its charges."""
    return -sum((Decimal(str(li["subtotal"])) for li in lines_for(subscription, charge_type)), Decimal("0.00"))


def microsoft_price(subscription) -> Decimal:
    return Decimal(str(lines_for(subscription, "new")[0]["unitPrice"]))


def simulate(org, subscription, new_quantity, now, unit_price=None):
    with tenant_context(org):
        return services.subscription_reduction_plan(subscription=fresh(subscription), new_quantity=new_quantity,
                                                    now=now, unit_price=unit_price)


def test_simulator_agrees_with_the_emulator(bought, emulator):  # noqa: F811
    member, subscription = bought
    org, actor = member.organization, Actor.user(member.user)

    # Minutes after the purchase: everything is refundable, and in full.
    now = emulator_now(emulator)
    raw = remote(org, subscription)
    plan = simulate(org, subscription, 0, now)
    assert plan.refundable_now == raw["refundableQuantity"]["totalQuantity"] == 10
    assert plan.refund_type == raw["refundOptions"][0]["type"] == "Full"
    assert [kind for kind, _ in nce.refund_options(bought_at=fresh(subscription).start_date, now=now)] == [
        o["type"] for o in raw["refundOptions"]]

    op = change(org, services.subscription_change_quantity, subscription=subscription, actor=actor, quantity=14)
    assert op.last_error == ""

    # Two days on (Microsoft's clock): prorated, from the cycle that contains today. The page shows
    # the customer's price; at Microsoft's price the same rules give the emulator's credit.
    emulator.advance_clock(days=2, hours=1)
    forget_tokens()
    now = emulator_now(emulator)
    raw = remote(org, subscription)
    price = microsoft_price(subscription)
    plan = simulate(org, subscription, 11, now, unit_price=price)
    shown = simulate(org, subscription, 11, now)
    assert plan.allowed and shown.allowed
    assert plan.refundable_now == shown.refundable_now == raw["refundableQuantity"]["totalQuantity"] == 14
    assert plan.refund_type == shown.refund_type == raw["refundOptions"][0]["type"] == "Partial"
    assert [(b.seats, b.added_at) for b in plan.batches] == [(b.seats, b.added_at) for b in shown.batches]
    op = change(org, services.subscription_change_quantity, subscription=subscription, actor=actor, quantity=11)
    assert op.last_error == ""
    assert credited(subscription, "removeQuantity") == plan.refund_total > 0

    # Cancel what is left: the simulator's figure is the emulator's cancelImmediate credit.
    now = emulator_now(emulator)
    plan = simulate(org, subscription, 0, now, unit_price=price)
    assert plan.allowed and plan.refund_type == "Partial"
    op = change(org, services.subscription_cancel, subscription=subscription, actor=actor)
    assert op.last_error == ""
    assert credited(subscription, "cancelImmediate") == plan.refund_total > 0
