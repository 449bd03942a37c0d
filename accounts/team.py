"""Team services: who acts, what role they may hand out, and changes to memberships.

Every function that changes state is transactional and audited. The last owner of an
organisation can never be removed or demoted: owner rows are locked before counting,
so two concurrent removals cannot each see "another owner remains".
"""

from __future__ import annotations

from django.db import transaction

from accounts.roles import ROLE_PERMISSIONS, Role
from core.audit import Actor, audit_record

from .models import ApiKey, Membership, Organization, User


class TeamError(Exception):
    """A team change that breaks a rule the person can understand and fix."""

    def __init__(self, message: str, *, code: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.code = code


def audit_actor(actor: User | ApiKey) -> Actor:
    if isinstance(actor, ApiKey):
        return Actor.api_key(actor)
    return Actor.user(actor)


def actor_role(actor: User | ApiKey, organization: Organization) -> str | None:
    if isinstance(actor, ApiKey):
        return actor.role if actor.organization_id == organization.pk else None
    membership = Membership.objects.filter(user=actor, organization=organization).only("role").first()
    return membership.role if membership else None


def role_within(role: str, ceiling: str | None) -> bool:
    """A role is within another when it grants nothing the other lacks (only owners grant owner)."""
    if ceiling is None or role not in ROLE_PERMISSIONS:
        return False
    return ROLE_PERMISSIONS[role] <= ROLE_PERMISSIONS[ceiling]


def ensure_can_grant(*, actor: User | ApiKey, organization: Organization, role: str) -> None:
    if role not in Role.values:
        raise TeamError("Choose a valid role.", code="invalid_role")
    if not role_within(role, actor_role(actor, organization)):
        raise TeamError("You cannot grant a role with more access than your own.", code="role_exceeds_own")


def _lock_owners(organization: Organization) -> list[Membership]:
    # Locked in primary-key order so concurrent changes queue instead of deadlocking.
    return list(
        Membership.objects.select_for_update().filter(organization=organization, role=Role.OWNER).order_by("pk")
    )


def _lock_member(organization: Organization, membership_id) -> Membership:
    membership = (
        # Only the membership is locked: FOR UPDATE on the joined user row would need a write policy on a
        # fellow member's account, which row-level security gives nobody (decision 043).
        Membership.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(organization=organization, pk=membership_id)
    ).first()
    if membership is None:
        raise Membership.DoesNotExist("No such member.")
    return membership


@transaction.atomic
def membership_add(*, organization: Organization, user: User, role: str, via: str) -> Membership:
    """``user`` joins ``organization`` with ``role``, audited as their own act (``via``: how they came, sign-up or
    an invitation). The caller holds the organisation's tenant context and its transaction."""
    membership = Membership(user=user, organization=organization, role=role)
    # The account is in hand and not yet a member, so row-level security would not show it (decision 043).
    membership.full_clean(exclude=["user"])
    membership.save()
    audit_record(
        actor=Actor.user(user),
        action="membership.created",
        organization=organization,
        target=membership,
        metadata={"role": role, "via": via},
    )
    return membership


def membership_change_role(*, organization: Organization, membership_id, role: str, actor: User | ApiKey) -> Membership:
    ensure_can_grant(actor=actor, organization=organization, role=role)
    owners = _lock_owners(organization)
    membership = _lock_member(organization, membership_id)
    if membership.role == role:
        return membership
    if membership.role == Role.OWNER and len(owners) <= 1:
        raise TeamError(
            "An organisation needs at least one owner. Make someone else an owner first.", code="last_owner"
        )
    if membership.role == Role.OWNER and not role_within(Role.OWNER, actor_role(actor, organization)):
        raise TeamError("Only an owner can change another owner's role.", code="role_exceeds_own")
    previous = membership.role
    membership.role = role
    membership.full_clean()
    membership.save(update_fields=["role", "updated_at"])
    audit_record(
        actor=audit_actor(actor),
        action="membership.role_changed",
        organization=organization,
        target=membership,
        metadata={"from": previous, "to": role},
    )
    return membership


@transaction.atomic
def membership_remove(*, organization: Organization, membership_id, actor: User | ApiKey) -> None:
    owners = _lock_owners(organization)
    membership = _lock_member(organization, membership_id)
    if membership.role == Role.OWNER:
        if len(owners) <= 1:
            raise TeamError("The last owner cannot be removed. Make someone else an owner first.", code="last_owner")
        if not role_within(Role.OWNER, actor_role(actor, organization)):
            raise TeamError("Only an owner can remove another owner.", code="role_exceeds_own")
    audit_record(
        actor=audit_actor(actor),
        action="membership.removed",
        organization=organization,
        target=membership,
        metadata={"role": membership.role},
    )
    membership.delete()


@transaction.atomic
def membership_leave(*, organization: Organization, user: User) -> None:
    owners = _lock_owners(organization)
    membership = Membership.objects.select_for_update().filter(organization=organization, user=user).first()
    if membership is None:
        raise Membership.DoesNotExist("Not a member.")
    if membership.role == Role.OWNER and len(owners) <= 1:
        raise TeamError("You are the last owner. Make someone else an owner before leaving.", code="last_owner")
    audit_record(
        actor=Actor.user(user),
        action="membership.left",
        organization=organization,
        target=membership,
        metadata={"role": membership.role},
    )
    membership.delete()
