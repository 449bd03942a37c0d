"""Writes owned by security that are not login monitoring or fraud: the organisation's sign-in policy."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from core.audit import Actor, audit_record

from . import network
from .models import SignInPolicy

MAX_NETWORKS = 50


@transaction.atomic
def sign_in_policy_set(*, organization, actor: Actor, networks_text: str, current_ip: str | None) -> SignInPolicy:
    """Replace the organisation's allowed sign-in networks (empty: sign-in from anywhere).

    Refused when the list would shut out the person saving it, so an owner cannot lock themselves out.
    """
    try:
        networks = network.parse_networks((networks_text or "").splitlines())
    except ValueError as exc:
        raise ValidationError({"networks": str(exc)}) from None
    networks = list(dict.fromkeys(networks))
    if len(networks) > MAX_NETWORKS:
        raise ValidationError({"networks": f"List at most {MAX_NETWORKS} networks; use wider ranges."})
    if networks and not network.in_networks(current_ip, networks):
        raise ValidationError({"networks": f"Your own address ({current_ip or 'unknown'}) is not in this list: saving "
                                           "it would sign you out for good. Add your network first."})
    policy = SignInPolicy.objects.for_org(organization).select_for_update().first() or SignInPolicy(
        organization=organization)
    previous = list(policy.allowed_networks)
    policy.allowed_networks = networks
    policy.full_clean(validate_constraints=False)
    policy.save()
    audit_record(actor=actor, action="security.sign_in_networks_changed", organization=organization, target=policy,
                 metadata={"before": previous, "after": networks})
    return policy
