"""Provisioning holds: a higher floor can stop new provisioning for one customer.

Security's Azure fraud response registers a check here from ``SecurityConfig.ready()`` (licensing
cannot import security). A check takes the organisation and returns the reason new provisioning is
held, or an empty string. New orders, order approvals and seat increases call
:func:`require_no_provisioning_hold`; reductions, cancellations and suspensions never do, so a hold
cannot stand in the way of shrinking exposure.
"""

from __future__ import annotations

from collections.abc import Callable

from licensing.nce import RuleViolation

_checks: list[Callable[[object], str]] = []


class ProvisioningHeld(RuleViolation):
    pass


def register_provisioning_hold(check: Callable[[object], str]) -> None:
    if check not in _checks:
        _checks.append(check)


def provisioning_hold_reason(organization) -> str:
    for check in _checks:
        reason = check(organization)
        if reason:
            return reason
    return ""


def require_no_provisioning_hold(organization) -> None:
    reason = provisioning_hold_reason(organization)
    if reason:
        raise ProvisioningHeld(reason, code="provisioning_held")
