"""Directory user actions an admin does every week in the Microsoft 365 admin center: create a user,
reset a password, block and unblock sign-in. Offboarding, which builds on these, is in ``offboard.py``.

Each action is a service that checks what it can locally, writes one outbox operation (a
``directory.*`` kind) aimed at the directory user, and audits, in one transaction. Its handler makes
the Graph calls and records the outcome in the local directory in the same transaction as the
operation's success (the created user through the sync's one write path), so the pages show it
without waiting for the next directory sync.

Temporary passwords are generated here (``secrets``) and live only in the operation's encrypted
payload until Graph has accepted them; the handler then moves the password into the operation's
encrypted result, from where ``passwords.temporary_password_reveal`` shows it once to whoever asked
for it (the page puts that behind a recent second-factor check) and erases it. One that nobody
reveals is erased after :data:`PASSWORD_TTL` (``passwords.temporary_passwords_expire``), and so is
one a newer reset replaced. A failed operation erases its password at once.
``checkpoint["password_waiting"]`` (not secret) marks the operations still holding one. Passwords never
reach a log, an audit event or an error message.
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.audit import Actor, audit_record
from core.crypto import blind_index
from core.field_locks import RESTRICTED_FIX, RESTRICTED_MESSAGE, is_restricted
from licensing.microsoft import errors as ms
from licensing.models import DirectoryUser, ProvisioningOperation
from licensing.models.directory import UPN_INDEX, graph_id_index_of
from licensing.provisioning import OperationRefused, operation_enqueue, operation_milestone, register_operation

from .graph import graph_for, linked_tenant
from .upsert import directory_user_upsert_from_graph

CREATE = "directory.user_create"
PASSWORD_RESET = "directory.user_password_reset"
BLOCK = "directory.user_block"
UNBLOCK = "directory.user_unblock"
OFFBOARD = "directory.user_offboard"
USER_ACTION_KINDS = (CREATE, PASSWORD_RESET, BLOCK, UNBLOCK, OFFBOARD)
PASSWORD_KINDS = (CREATE, PASSWORD_RESET)
KIND_LABELS = {
    CREATE: "Create user", PASSWORD_RESET: "Reset password", BLOCK: "Block sign-in", UNBLOCK: "Unblock sign-in",
    OFFBOARD: "Offboard",
}

PASSWORD_TTL = timedelta(hours=24)
PASSWORD_LENGTH = 16
# No look-alikes (0/O, 1/l/I), so a password read off the screen is typed right the first time.
_UPPER, _LOWER, _DIGITS, _SYMBOLS = "ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnopqrstuvwxyz", "23456789", "!#$%&*+-=?@^_"
# Entra ID's username policy for the part before the @, and the mail alias made from it.
UPN_LOCAL_RE = re.compile(r"^[A-Za-z0-9'._!#^~-]{1,64}$")
USAGE_LOCATION_RE = re.compile(r"^[A-Z]{2}$")
# A created user adopted after a lost answer must have been created after the operation, give or take this.
CLOCK_SKEW = timedelta(minutes=5)
ACTIVE = (ProvisioningOperation.Status.PENDING, ProvisioningOperation.Status.RUNNING)


class DirectoryActionRefused(Exception):
    """A user action the portal refuses before asking Microsoft; ``message`` is written for the admin."""

    def __init__(self, code: str, message: str, *, field: str = ""):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


# --- shared pieces ---------------------------------------------------------------------------------------------


def generate_temporary_password(length: int = PASSWORD_LENGTH) -> str:
    """A random password meeting Entra ID's rules (all four character classes, no look-alikes)."""
    alphabet = _UPPER + _LOWER + _DIGITS + _SYMBOLS
    chars = [secrets.choice(_UPPER), secrets.choice(_LOWER), secrets.choice(_DIGITS), secrets.choice(_SYMBOLS)]
    chars += [secrets.choice(alphabet) for _ in range(length - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


def step_request_id(operation: ProvisioningOperation, step: str) -> str:
    """A stable request id per Graph call of an operation: the same on every retry of that step."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"msrequest:{operation.ms_request_id}/{step}"))


def actor_of_operation(operation: ProvisioningOperation) -> Actor:
    """The admin (or API key) who asked for the operation, for the audit events its handler writes."""
    actor_type, _, actor_id = (operation.actor_label or "system:provisioning").partition(":")
    return Actor(actor_type, actor_id)


def active_operation(organization, user: DirectoryUser, kinds=USER_ACTION_KINDS) -> ProvisioningOperation | None:
    return (
        ProvisioningOperation.objects.for_org(organization)
        .filter(kind__in=kinds, target_type="DirectoryUser", target_id=str(user.pk), status__in=ACTIVE)
        .order_by("created_at").first()
    )


def lock_user(organization, user: DirectoryUser) -> DirectoryUser:
    user = DirectoryUser.objects.for_org(organization).select_for_update().get(pk=user.pk)
    if user.removed_at is not None:
        raise DirectoryActionRefused("user_removed", "This user was deleted in your Microsoft tenant. Sync the "
                                                     "directory to refresh the list.")
    return user


def _refuse_during_offboarding(organization, user: DirectoryUser) -> None:
    if active_operation(organization, user, kinds=(OFFBOARD,)) is not None:
        raise DirectoryActionRefused("offboarding", "This user is being offboarded. Wait until it has finished.")


def enqueue_for_user(*, organization, user, kind: str, payload: dict, actor: Actor, audit_action: str,
                      metadata: dict | None = None) -> ProvisioningOperation:
    """One operation of ``kind`` in flight per user: asking again returns the one already queued.
    The operation records who asked (``requested_by`` for a person, ``actor_label`` for any actor)."""
    current = active_operation(organization, user, kinds=(kind,))
    if current is not None:
        return current
    operation = operation_enqueue(organization=organization, kind=kind, payload=payload, actor=actor, target=user)
    audit_record(actor=actor, action=audit_action, organization=organization, target=user,
                 metadata={"operation": str(operation.pk), **(metadata or {})})
    return operation


def _hold_password(operation: ProvisioningOperation, password: str) -> dict:
    """Graph accepted the password: move it from the payload to the result, for one reveal."""
    operation.payload = {k: v for k, v in (operation.payload or {}).items() if k != "password"}
    operation.checkpoint = {**(operation.checkpoint or {}), "password_waiting": True}
    expires = timezone.now() + PASSWORD_TTL
    return {"temporary_password": password, "password_expires_at": expires.isoformat()}


def erase_password(operation: ProvisioningOperation) -> None:
    """A failed operation keeps no password (a retry generates a new one)."""
    operation.payload = {k: v for k, v in (operation.payload or {}).items() if k != "password"}
    if operation.result and "temporary_password" in operation.result:
        operation.result = {k: v for k, v in operation.result.items() if k != "temporary_password"}
    operation.checkpoint = {k: v for k, v in (operation.checkpoint or {}).items() if k != "password_waiting"}


def _supersede_waiting_passwords(operation: ProvisioningOperation, user: DirectoryUser) -> None:
    """A new password makes any earlier one still waiting to be shown useless: erase it."""
    earlier = ProvisioningOperation.objects.for_org(operation.organization_id).select_for_update().filter(
        kind__in=PASSWORD_KINDS, target_type="DirectoryUser", target_id=str(user.pk),
        checkpoint__password_waiting=True,
    ).exclude(pk=operation.pk)
    for previous in earlier:
        erase_password(previous)
        previous.result = {**(previous.result or {}), "password_superseded_at": timezone.now().isoformat()}
        previous.save(update_fields=["payload", "result", "checkpoint", "updated_at"])


def _password_for(operation: ProvisioningOperation) -> str:
    password = (operation.payload or {}).get("password")
    if not password:
        password = generate_temporary_password()
        operation.payload = {**(operation.payload or {}), "password": password}
    return password


def target_user(operation: ProvisioningOperation) -> DirectoryUser:
    user = DirectoryUser.objects.for_org(operation.organization_id).filter(pk=operation.target_id).first()
    if user is None:
        raise OperationRefused("This user is no longer in the portal's directory. Sync the directory and try "
                               "again.", code="user_not_found")
    return user


def _graph_call(call, *, not_found: str):
    """Run a Graph call; a user Graph does not know is a clear refusal, not a retry."""
    try:
        return call()
    except ms.NotFound:
        raise OperationRefused(not_found, code="user_not_found") from None


USER_GONE = ("Microsoft 365 no longer has this user: it was probably deleted in the admin center. Sync the "
             "directory to refresh the list.")


# --- create --------------------------------------------------------------------------------------------------


def tenant_domains(organization) -> list[str]:
    tenant = linked_tenant(organization)
    domains = [d for d in (tenant.verified_domains or []) if isinstance(d, str) and d]
    if tenant.primary_domain and tenant.primary_domain not in domains:
        domains.insert(0, tenant.primary_domain)
    return domains


@transaction.atomic
def directory_user_create(
    *, organization, actor: Actor, display_name: str, user_name: str, domain: str, usage_location: str = "",
    job_title: str = "", force_change_password: bool = True,
) -> ProvisioningOperation:
    """Queue a new user in the customer's tenant (``POST /users``) with a generated temporary password.

    ``user_name`` is the part of the user principal name before the @ and doubles as the mail alias.
    A name already used in the portal's directory is refused here; one taken in Microsoft but not yet
    synced is refused by Graph, and the operation then fails with a clear reason.
    """
    display_name = (display_name or "").strip()
    user_name = (user_name or "").strip()
    usage_location = (usage_location or "").strip().upper()
    job_title = (job_title or "").strip()
    domains = tenant_domains(organization)
    if not display_name or len(display_name) > 256:
        raise DirectoryActionRefused("invalid", "Enter a display name of up to 256 characters.", field="display_name")
    if not UPN_LOCAL_RE.match(user_name) or user_name.startswith(".") or user_name.endswith("."):
        raise DirectoryActionRefused(
            "invalid", "Use up to 64 letters, digits and . - _ ' ! # ^ ~ for the user name, without spaces, not "
                       "starting or ending with a dot.", field="user_name")
    domain = (domain or "").strip().lower()
    if domain not in [d.lower() for d in domains]:
        raise DirectoryActionRefused("invalid", "Choose one of your tenant's verified domains.", field="domain")
    if usage_location and not USAGE_LOCATION_RE.match(usage_location):
        raise DirectoryActionRefused("invalid", "Use a two-letter country code such as US, GB or DE.",
                                     field="usage_location")
    if len(job_title) > 128:
        raise DirectoryActionRefused("invalid", "Use up to 128 characters for the job title.", field="job_title")
    upn = f"{user_name}@{domain}"
    taken = DirectoryUser.objects.for_org(organization).filter(
        upn_index=blind_index(UPN_INDEX, upn), removed_at__isnull=True
    ).exists()
    if taken:
        raise DirectoryActionRefused("upn_taken", "This user name is already taken in your tenant. Choose another.",
                                     field="user_name")
    payload = {
        "display_name": display_name, "user_principal_name": upn, "mail_nickname": user_name,
        "usage_location": usage_location, "job_title": job_title, "force_change": bool(force_change_password),
        "password": generate_temporary_password(),
    }
    operation = operation_enqueue(organization=organization, kind=CREATE, payload=payload, actor=actor)
    audit_record(actor=actor, action="directory.user_create_requested", organization=organization, target=operation)
    return operation


@register_operation(CREATE, on_failure=erase_password, max_attempts=6)
def _run_create(operation: ProvisioningOperation) -> dict:
    organization = operation.organization
    spec = operation.payload
    password = _password_for(operation)
    graph = graph_for(organization)
    upn = spec["user_principal_name"]
    try:
        created = graph.create_user(
            request_id=step_request_id(operation, "create"), display_name=spec["display_name"],
            mail_nickname=spec["mail_nickname"], user_principal_name=upn, password=password,
            usage_location=spec.get("usage_location") or None, job_title=spec.get("job_title") or None,
            force_change_password=spec.get("force_change", True),
        )
    except ms.ObjectConflict as exc:
        created = _adopt_own_creation(graph, operation, upn, password)
        if created is None:
            if exc.target and exc.target != "userPrincipalName":
                raise OperationRefused("The mail alias is already used by another user or group in your tenant. "
                                       "Choose another user name.", code="alias_taken") from None
            raise OperationRefused("This user name is already taken in your Microsoft tenant. Choose another user "
                                   "name.", code="upn_taken") from None
    operation_milestone(operation, "created")
    # The new user enters the local directory through the sync's one write path, now, not at the next sync.
    directory_user_upsert_from_graph(organization=organization, users=[{
        "id": created["id"], "displayName": spec["display_name"], "userPrincipalName": upn,
        "mail": created.get("mail"), "jobTitle": spec.get("job_title") or None,
        "usageLocation": spec.get("usage_location") or None, "accountEnabled": True, "assignedLicenses": [],
    }])
    user = DirectoryUser.objects.for_org(organization).get(graph_id_index=graph_id_index_of(created["id"]))
    operation.target_type, operation.target_id = "DirectoryUser", str(user.pk)
    operation_milestone(operation, "in_directory")
    audit_record(actor=actor_of_operation(operation), action="directory.user_created", organization=organization,
                 target=user, metadata={"operation": str(operation.pk)})
    return {"directory_user_id": str(user.pk), **_hold_password(operation, password)}


def _adopt_own_creation(graph, operation: ProvisioningOperation, upn: str, password: str) -> dict | None:
    """Graph has no idempotency key for POST /users: when an earlier try created the user and its answer
    was lost, the retry meets our own user as a conflict. Adopt it only if it was made after this
    operation with our alias and name and no other operation already recorded it (a second request for
    the same name, queued before the first ran, must fail, not take the first one's user). The adopted
    user then gets this operation's password, so the password shown is the one that works."""
    try:
        found = graph.get_user(user_key=upn, select=["id", "displayName", "mailNickname", "mail", "createdDateTime"])
    except ms.NotFound:
        return None
    created_at = parse_datetime(found.get("createdDateTime") or "")
    spec = operation.payload
    ours = (
        created_at is not None
        and created_at >= operation.created_at - CLOCK_SKEW
        and found.get("mailNickname") in (None, spec["mail_nickname"])
        and found.get("displayName") == spec["display_name"]
        and not DirectoryUser.objects.for_org(operation.organization_id)
        .filter(graph_id_index=graph_id_index_of(found["id"])).exists()
    )
    if not ours:
        return None
    graph.reset_password(user_id=found["id"], password=password, force_change=spec.get("force_change", True),
                         request_id=step_request_id(operation, "adopt-password"))
    return found


# --- password reset ------------------------------------------------------------------------------------------


@transaction.atomic
def directory_user_password_reset(
    *, organization, user: DirectoryUser, actor: Actor, force_change_password: bool = True,
) -> ProvisioningOperation:
    """Queue a password reset with a generated temporary password, shown once to the admin who asked."""
    user = lock_user(organization, user)
    _refuse_during_offboarding(organization, user)
    if is_restricted(organization, DirectoryUser, user.pk):  # GDPR Art. 18: no new processing of their account
        raise DirectoryActionRefused("restricted", f"{RESTRICTED_MESSAGE} {RESTRICTED_FIX}")
    return enqueue_for_user(
        organization=organization, user=user, kind=PASSWORD_RESET, actor=actor,
        payload={"force_change": bool(force_change_password), "password": generate_temporary_password()},
        audit_action="directory.password_reset_requested",
    )


@register_operation(PASSWORD_RESET, on_failure=erase_password, max_attempts=6)
def _run_password_reset(operation: ProvisioningOperation) -> dict:
    user = target_user(operation)
    password = _password_for(operation)
    graph = graph_for(operation.organization)
    _graph_call(lambda: graph.reset_password(
        user_id=str(user.graph_id), password=password, force_change=operation.payload.get("force_change", True),
        request_id=step_request_id(operation, "reset"),
    ), not_found=USER_GONE)
    operation_milestone(operation, "password_set")
    _supersede_waiting_passwords(operation, user)
    audit_record(actor=actor_of_operation(operation), action="directory.password_reset",
                 organization=user.organization_id, target=user, metadata={"operation": str(operation.pk)})
    return _hold_password(operation, password)


# --- block and unblock sign-in -------------------------------------------------------------------------------


@transaction.atomic
def directory_user_block(*, organization, user: DirectoryUser, actor: Actor) -> ProvisioningOperation:
    """Queue blocking sign-in (``accountEnabled: false``) and signing the user out of every session."""
    user = lock_user(organization, user)
    _refuse_during_offboarding(organization, user)
    if active_operation(organization, user, kinds=(UNBLOCK,)) is not None:
        raise DirectoryActionRefused("in_progress", "Unblocking this user is still in progress. Wait a moment.")
    return enqueue_for_user(organization=organization, user=user, kind=BLOCK, payload={}, actor=actor,
                             audit_action="directory.block_requested")


@transaction.atomic
def directory_user_unblock(*, organization, user: DirectoryUser, actor: Actor) -> ProvisioningOperation:
    """Queue allowing sign-in again (``accountEnabled: true``)."""
    user = lock_user(organization, user)
    _refuse_during_offboarding(organization, user)
    if active_operation(organization, user, kinds=(BLOCK,)) is not None:
        raise DirectoryActionRefused("in_progress", "Blocking this user is still in progress. Wait a moment.")
    return enqueue_for_user(organization=organization, user=user, kind=UNBLOCK, payload={}, actor=actor,
                             audit_action="directory.unblock_requested")


def block_sign_in(operation: ProvisioningOperation, user: DirectoryUser) -> None:
    """Block sign-in, then revoke the sessions already open (each step once, recorded as a milestone)."""
    graph = graph_for(operation.organization)
    if "sign_in_blocked" not in operation.milestones:
        _graph_call(lambda: graph.set_account_enabled(
            user_id=str(user.graph_id), enabled=False, request_id=step_request_id(operation, "block"),
        ), not_found=USER_GONE)
        operation_milestone(operation, "sign_in_blocked")
    _set_local_enabled(user, False)
    if "sessions_revoked" not in operation.milestones:
        _graph_call(lambda: graph.revoke_sign_in_sessions(
            user_id=str(user.graph_id), request_id=step_request_id(operation, "revoke"),
        ), not_found=USER_GONE)
        operation_milestone(operation, "sessions_revoked")


def _set_local_enabled(user: DirectoryUser, enabled: bool) -> None:
    if user.account_enabled != enabled:
        user.account_enabled = enabled
        user.save(update_fields=["account_enabled", "updated_at"])


@register_operation(BLOCK)
def _run_block(operation: ProvisioningOperation) -> dict:
    user = target_user(operation)
    block_sign_in(operation, user)
    audit_record(actor=actor_of_operation(operation), action="directory.sign_in_blocked",
                 organization=user.organization_id, target=user, metadata={"operation": str(operation.pk)})
    return {"account_enabled": False, "sessions_revoked": True}


@register_operation(UNBLOCK)
def _run_unblock(operation: ProvisioningOperation) -> dict:
    user = target_user(operation)
    graph = graph_for(operation.organization)
    _graph_call(lambda: graph.set_account_enabled(
        user_id=str(user.graph_id), enabled=True, request_id=step_request_id(operation, "unblock"),
    ), not_found=USER_GONE)
    operation_milestone(operation, "sign_in_allowed")
    _set_local_enabled(user, True)
    audit_record(actor=actor_of_operation(operation), action="directory.sign_in_unblocked",
                 organization=user.organization_id, target=user, metadata={"operation": str(operation.pk)})
    return {"account_enabled": True}
