"""Staff access grants, modelled on Microsoft's GDAP: writes (request, approve, deny, revoke, expire,
break glass, the customer's policy) and the rules they share.

A staff member has no access to any customer by default. Access is a grant to one organisation,
for named roles, between a start and an expiry (hours for just-in-time support, at most 730 days),
with a justification. The customer's policy approves named roles at once; anything else waits for
an owner (the owners are e-mailed). Each role covers admin areas (``AREA_ROLES``): reading needs a
role that covers the area, changing needs one of its operator roles. Superusers are not exempt: without a grant they
break glass (a reason, at most four hours, security alerted, the customer sees it afterwards).
See docs/decisions/021-staff-access-grants.md.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from core.audit import Actor, audit_record
from core.tenancy import person_context, tenant_context, unscoped_no_tenant

from .models import Membership, Organization, Role, StaffAccessPolicy, StaffGrant, StaffRole, User

MAX_GRANT = timedelta(days=730)
MIN_GRANT = timedelta(hours=1)
MAX_BREAK_GLASS = timedelta(hours=4)
# Reminders before expiry: label -> how long before.
REMINDERS = {"3d": timedelta(days=3), "24h": timedelta(hours=24)}

R = StaffRole
# Admin area -> (roles that may read it, roles that may change it).
AREA_ROLES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # Organisations, members and people: every role needs to know whom it works for.
    "accounts": (frozenset(R.values), frozenset()),
    "licensing": (frozenset({R.SUPPORT_READER, R.LICENSE_OPERATOR}), frozenset({R.LICENSE_OPERATOR})),
    "billing": (frozenset({R.SUPPORT_READER, R.BILLING_OPERATOR}), frozenset({R.BILLING_OPERATOR})),
    "privacy": (frozenset({R.PRIVACY_OPERATOR}), frozenset({R.PRIVACY_OPERATOR})),
    "security": (frozenset({R.SECURITY_RESPONDER}), frozenset({R.SECURITY_RESPONDER})),
}


def roles_cover(roles, area: str, *, change: bool = False) -> bool:
    """Whether ``roles`` may read (or, with ``change``, change) the ``area``. Unknown areas: never."""
    readers, writers = AREA_ROLES.get(area, (frozenset(), frozenset()))
    return bool(set(roles) & (writers if change else readers))


def _clean_roles(roles) -> list[str]:
    roles = sorted(set(roles or ()))
    if not roles:
        raise ValidationError({"roles": "Choose at least one role."})
    unknown = [role for role in roles if role not in R.values]
    if unknown:
        raise ValidationError({"roles": f"Unknown role: {', '.join(unknown)}."})
    return roles


def _clean_text(value: str, field: str, *, required: bool, limit: int) -> str:
    value = (value or "").strip()
    if "\x00" in value:
        raise ValidationError({field: "Remove the control characters."})
    if required and not value:
        raise ValidationError({field: "Say why this access is needed (a ticket or a reason)."})
    if len(value) > limit:
        raise ValidationError({field: f"Use at most {limit} characters."})
    return value


def _staff_only(user: User) -> None:
    if not (user.is_active and user.is_staff):
        raise ValidationError("Only active reseller staff can hold a grant.")


def _audit(grant: StaffGrant, action: str, actor: Actor, **metadata) -> None:
    audit_record(
        actor=actor,
        action=action,
        organization=grant.organization_id,
        target=grant,
        metadata={
            "grant": str(grant.pk),
            "roles": grant.roles,
            "staff": str(grant.staff_id),
            "expires_at": grant.expires_at.isoformat(),
            **metadata,
        },
    )


def staff_access_policy(organization: Organization) -> list[str]:
    """The roles this organisation approves without asking (none unless it said so)."""
    with tenant_context(organization):
        policy = StaffAccessPolicy.objects.filter(organization=organization).first()
    return sorted(policy.auto_approve_roles) if policy else []


@transaction.atomic
def staff_access_policy_update(*, organization: Organization, actor: User, auto_approve_roles) -> list[str]:
    roles = sorted(set(auto_approve_roles or ()))
    unknown = [role for role in roles if role not in R.values]
    if unknown:
        raise ValidationError({"auto_approve_roles": f"Unknown role: {', '.join(unknown)}."})
    with tenant_context(organization):
        policy, _ = StaffAccessPolicy.objects.get_or_create(organization=organization)
        if sorted(policy.auto_approve_roles) != roles:
            policy.auto_approve_roles = roles
            policy.save(update_fields=["auto_approve_roles", "updated_at"])
            audit_record(
                actor=Actor.user(actor),
                action="staff_access.policy_updated",
                organization=organization,
                target=policy,
                metadata={"auto_approve_roles": roles},
            )
    return roles


@transaction.atomic
def staff_grant_request(
    *,
    organization: Organization,
    staff: User,
    roles,
    duration: timedelta,
    justification: str,
    ticket_reference: str = "",
    requested_by: User | None = None,
    starts_at=None,
) -> StaffGrant:
    """Ask for access. Roles the organisation's policy names are active at once; otherwise the grant
    waits for an owner's approval on the Reseller access page."""
    _staff_only(staff)
    roles = _clean_roles(roles)
    if not MIN_GRANT <= duration <= MAX_GRANT:
        raise ValidationError({"duration": "Ask for between one hour and 730 days."})
    now = timezone.now()
    starts_at = starts_at or now
    grant = StaffGrant(
        organization=organization,
        staff=staff,
        roles=roles,
        starts_at=starts_at,
        expires_at=starts_at + duration,
        justification=_clean_text(justification, "justification", required=True, limit=500),
        ticket_reference=_clean_text(ticket_reference, "ticket_reference", required=False, limit=64),
        requested_by=requested_by or staff,
    )
    # Written in the organisation's context: row-level security admits a grant, like the owners read below
    # and the audit event, only there (the staff member asking is not in it otherwise, decision 044).
    with tenant_context(organization):
        auto = set(roles) <= set(staff_access_policy(organization))
        if auto:
            grant.status, grant.approved_at, grant.auto_approved = StaffGrant.Status.ACTIVE, now, True
        grant.save()
        _audit(grant, "staff_grant.requested", Actor.staff(requested_by or staff), auto_approved=auto)
        if not auto:
            _ask_owners(grant)
    return grant


def _ask_owners(grant: StaffGrant) -> None:
    """E-mail the organisation's owners, after the commit, that a request waits for their decision."""
    organization = grant.organization
    # Loaded as users: the e-mail is an encrypted field, decrypted by the model, never by values_list().
    owners = [
        m.user.email
        for m in Membership.objects.filter(organization=organization, role=Role.OWNER, user__is_active=True)
        .select_related("user")
        .order_by("pk")
    ]
    if not owners:
        return
    page = settings.SITE_URL.rstrip("/") + reverse("team:reseller_access", kwargs={"org_slug": organization.slug})
    subject = f"Your reseller asks for access to {organization.display_name}"
    body = (
        f"{grant.staff.email} of your reseller asks for {grant.get_roles_display()} access to "
        f"{organization.display_name} until {grant.expires_at:%Y-%m-%d %H:%M} UTC.\n\n"
        f"Reason given: {grant.justification}\n\n"
        f"Nothing is granted until an owner approves it. Approve or deny it on the Reseller access page: {page}"
    )
    transaction.on_commit(lambda: send_mail(subject, body, None, owners))


def _pending(organization: Organization, grant_id) -> StaffGrant:
    """The organisation's grant, locked. Callers run inside the organisation's context (row-level security)."""
    grant = StaffGrant.objects.select_for_update().filter(organization=organization, pk=grant_id).first()
    if grant is None:
        raise StaffGrant.DoesNotExist
    return grant


@transaction.atomic
def staff_grant_approve(*, organization: Organization, grant_id, actor: User) -> StaffGrant:
    with tenant_context(organization):
        grant = _pending(organization, grant_id)
        if grant.status != StaffGrant.Status.REQUESTED:
            raise ValidationError("Only a pending request can be approved.")
        if grant.expires_at <= timezone.now():
            raise ValidationError("This request has already run out; the reseller must ask again.")
        grant.status, grant.approved_by, grant.approved_at = StaffGrant.Status.ACTIVE, actor, timezone.now()
        grant.save(update_fields=["status", "approved_by", "approved_at", "updated_at"])
        _audit(grant, "staff_grant.approved", Actor.user(actor))
    return grant


@transaction.atomic
def staff_grant_deny(*, organization: Organization, grant_id, actor: User) -> StaffGrant:
    with tenant_context(organization):
        grant = _pending(organization, grant_id)
        if grant.status != StaffGrant.Status.REQUESTED:
            raise ValidationError("Only a pending request can be denied.")
        grant.status, grant.ended_by, grant.ended_at = StaffGrant.Status.DENIED, actor, timezone.now()
        grant.save(update_fields=["status", "ended_by", "ended_at", "updated_at"])
        _audit(grant, "staff_grant.denied", Actor.user(actor))
    return grant


@transaction.atomic
def staff_grant_revoke(*, organization: Organization, grant_id, actor: User, by_staff: bool = False) -> StaffGrant:
    """End a grant now (the customer at any time, or the staff member giving it back)."""
    with tenant_context(organization):
        grant = _pending(organization, grant_id)
        if grant.status not in (StaffGrant.Status.ACTIVE, StaffGrant.Status.REQUESTED):
            raise ValidationError("This access has already ended.")
        grant.status, grant.ended_by, grant.ended_at = StaffGrant.Status.REVOKED, actor, timezone.now()
        grant.save(update_fields=["status", "ended_by", "ended_at", "updated_at"])
        _audit(grant, "staff_grant.revoked", Actor.staff(actor) if by_staff else Actor.user(actor))
    return grant


def security_alert_recipients() -> list[str]:
    return list(settings.SECURITY_ALERT_EMAILS)


@transaction.atomic
def staff_grant_break_glass(
    *, organization: Organization, staff: User, roles, duration: timedelta, reason: str
) -> StaffGrant:
    """Emergency access by a superuser: active at once, at most four hours, security alerted by e-mail,
    and listed on the customer's Reseller access page as break-glass access."""
    if not (staff.is_active and staff.is_staff and staff.is_superuser):
        raise ValidationError("Only a superuser can break glass.")
    roles = _clean_roles(roles)
    reason = _clean_text(reason, "reason", required=True, limit=500)
    if not timedelta(minutes=15) <= duration <= MAX_BREAK_GLASS:
        raise ValidationError({"duration": "Break-glass access lasts between 15 minutes and 4 hours."})
    now = timezone.now()
    with tenant_context(organization):  # row-level security admits the grant and its audit event only there
        grant = StaffGrant.objects.create(
            organization=organization,
            staff=staff,
            roles=roles,
            status=StaffGrant.Status.ACTIVE,
            starts_at=now,
            expires_at=now + duration,
            justification=reason,
            break_glass=True,
            requested_by=staff,
            approved_at=now,
        )
        _audit(grant, "staff_grant.break_glass", Actor.staff(staff, grant), reason_given=True)
    subject = f"Break-glass access to {organization.display_name} by {staff.email}"
    body = (
        f"{staff.email} opened break-glass access to {organization.display_name} ({organization.slug}) "
        f"for {grant.get_roles_display()} until {grant.expires_at:%Y-%m-%d %H:%M} UTC.\n\nReason: {reason}\n\n"
        f"Grant {grant.pk}. Review it in the staff admin; the customer sees it on their Reseller access page."
    )
    recipients = security_alert_recipients()
    transaction.on_commit(lambda: send_mail(subject, body, None, recipients))
    return grant


def _expire(grant: StaffGrant, now) -> None:
    grant.status, grant.ended_at = StaffGrant.Status.EXPIRED, now
    grant.save(update_fields=["status", "ended_at", "updated_at"])
    _audit(grant, "staff_grant.expired", Actor.system("staff-grants"))


def staff_grants_expire_and_remind(*, now=None) -> dict[str, int]:
    """Mark grants past their expiry (access already ends at expiry: the admin checks the time on every
    request; this keeps the status true) and e-mail staff before their grants run out.

    A sweep over every organisation's grants: which ones are due is read as the system role (ids only), and
    each is then locked and changed inside its organisation's context, as the application role."""
    now = now or timezone.now()
    expired = reminded = 0
    due, upcoming = _grants_due(now)
    for grant_id, organization_id, _staff_id in due:
        with tenant_context(organization_id):
            grant = StaffGrant.objects.select_for_update().get(pk=grant_id)
            if grant.status in (StaffGrant.Status.ACTIVE, StaffGrant.Status.REQUESTED) and grant.expires_at <= now:
                _expire(grant, now)
                expired += 1
    for grant_id, organization_id, staff_id in upcoming:
        # Only the grant is locked: FOR UPDATE on the joined staff row would need a write policy on users.
        # The staff member is in scope too: the reminder is addressed to them, and they are no member here.
        with tenant_context(organization_id), person_context(staff_id):
            grant = (StaffGrant.objects.select_for_update(of=("self",)).select_related("staff", "organization")
                     .get(pk=grant_id))
            left = grant.expires_at - now
            # Only the nearest reminder not yet sent: a grant found 20 hours before expiry gets "24h", not both.
            label = min((name for name, before in REMINDERS.items() if left <= before), key=REMINDERS.get, default=None)
            if label is None or label in grant.reminders_sent:
                continue
            grant.reminders_sent = [*grant.reminders_sent, label]
            grant.save(update_fields=["reminders_sent", "updated_at"])
            _audit(grant, "staff_grant.reminder_sent", Actor.system("staff-grants"), reminder=label)
            subject = f"Your access to {grant.organization.display_name} ends {grant.expires_at:%Y-%m-%d %H:%M} UTC"
            body = (
                f"Your {grant.get_roles_display()} access to {grant.organization.display_name} ends on "
                f"{grant.expires_at:%Y-%m-%d %H:%M} UTC. Request a new grant in the staff admin if the work "
                "is not finished; the customer may have to approve it."
            )
            recipient = grant.staff.email
            transaction.on_commit(lambda s=subject, b=body, r=recipient: send_mail(s, b, None, [r]))
            reminded += 1
    return {"expired": expired, "reminded": reminded}


def _grants_due(now) -> tuple[list, list]:
    """(grant, organisation, staff member) ids of the grants past their expiry and of those to remind, across
    every organisation: read as the system role, ids only."""
    ids = ("pk", "organization_id", "staff_id")
    horizon = now + max(REMINDERS.values())
    with unscoped_no_tenant():
        due = list(
            StaffGrant.objects.filter(
                status__in=[StaffGrant.Status.ACTIVE, StaffGrant.Status.REQUESTED], expires_at__lte=now
            ).values_list(*ids)
        )
        upcoming = list(
            StaffGrant.objects.filter(
                status=StaffGrant.Status.ACTIVE, expires_at__gt=now, expires_at__lte=horizon
            ).values_list(*ids)
        )
    return due, upcoming
