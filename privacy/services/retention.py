"""The retention purge: rows whose retention period has run out are deleted, nightly, in batches.

Driven by the registry. A model is purged by age when every personal field it declares has a
time-limited class measured from the row's own date (the security log, 400 days; the technical log,
90 days; privacy records, 24 months: ``PURGED_BY_AGE``); the row goes once its longest period has
passed.

Event-started classes are measured from an organisation's event, not the row's date
(:data:`EVENT_CLASSES`, :func:`organization_events`): ``active_plus_legal`` and ``billing_record``
from the end of the relationship (the last live subscription ended, or the organisation closed),
``tenant_link`` from the Microsoft tenant's unlinking (or the closing). A tenant-owned model whose
classes are all event-started or by age is purged per organisation once every one of its classes has
run out: the event happened and its period passed (``PRIVACY_RETENTION_DAYS`` overrides a period),
and for age classes the row is old enough. Until its event, nothing of an organisation goes.
``account`` data goes with the account (erasure), and the audit chain is kept whole (its hashes link
every event to the one before).

Each batch is its own short transaction (ids first, then one ``DELETE ... WHERE id IN``), so no lock
is held for long and the API keeps answering. Legal holds (:class:`~privacy.models.LegalHold`) exempt a
person's or an organisation's rows and are reported. A dry run counts without deleting. Every run is
recorded with its counts per data set, never the data. A second run finds nothing left to purge.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max, ProtectedError, Q
from django.utils import timezone

from accounts.models import Membership, MicrosoftTenant, Organization
from accounts.selectors import organizations_across_tenants
from core.audit import Actor, audit_record
from core.immutable import retention_purge_deletes
from core.registry import RETENTION_DAYS, Retention, Subject, declared_models, model_field_names
from core.tenancy import (
    APPEND_ONLY_TABLES,
    PERSON_SCOPED_TABLES,
    PRIVACY_REQUEST_TABLES,
    TenantManager,
    row_security_hides,
    tenant_context,
    unscoped_no_tenant,
)
from licensing.models import Subscription
from privacy.models import LegalHold, PrivacyRequest, RetentionRun
from privacy.services.authorizations import authorization_files_purge_orphans

PURGED_BY_AGE = frozenset({Retention.SECURITY_LOG, Retention.TECHNICAL_LOG, Retention.PRIVACY_RECORD})
# Event-started classes and the organisation event each is measured from.
EVENT_CLASSES = {
    Retention.ACTIVE_PLUS_LEGAL: "relationship_ended",
    Retention.BILLING_RECORD: "relationship_ended",
    Retention.TENANT_LINK: "tenant_unlinked",
}
# Periods measured from the event, in days (the legal, tax and Microsoft-audit period by default).
EVENT_DAYS = {Retention.ACTIVE_PLUS_LEGAL: 7 * 365, Retention.BILLING_RECORD: 7 * 365, Retention.TENANT_LINK: 0}
# Never purged row by row: the audit chain's hashes link each event to the one before.
NEVER_PURGED = frozenset({"core.auditevent"})
LIVE_SUBSCRIPTION = ("pending", "active", "suspended")
# The date each model's age is measured from (the first that exists).
AGE_FIELDS = ("last_seen_at", "occurred_at", "recorded_at", "completed_at", "created_at")
# Rows that must also be finished before they can go: an open request is never purged.
ALSO_REQUIRED = {"privacy.privacyrequest": ~Q(status__in=PrivacyRequest.OPEN_STATUSES)}
# Measured from another date than the first of AGE_FIELDS: a request from its last change (its closing).
AGE_FIELD_OVERRIDES = {"privacy.privacyrequest": "updated_at"}
# Not purged on their own: they go with the row they belong to.
GO_WITH_PARENT = frozenset({"privacy.privacyrequestevent"})
BATCH_SIZE = 1000


def _purgeable():
    """(model, subject lookup, age field, period in days) for every model purged by age."""
    for declaration in sorted(declared_models(), key=lambda d: d.model._meta.label):
        classes = {p.retention for p in declaration.personal.values()}
        if not classes or not classes <= PURGED_BY_AGE:
            continue
        model = declaration.model
        if model._meta.label_lower in GO_WITH_PARENT:
            continue
        names = set(model_field_names(model))
        age_field = AGE_FIELD_OVERRIDES.get(model._meta.label_lower) or next(
            (f for f in AGE_FIELDS if f in names), None
        )
        if age_field is None:
            continue
        days = max(period_days(Retention(c)) for c in classes)
        lookup = declaration.subject_lookup if declaration.subject == Subject.PORTAL_USER else None
        yield model, lookup, age_field, days


def period_days(retention: Retention) -> int:
    """The period of a class, in days: ``PRIVACY_RETENTION_DAYS`` (configurable per class) over the defaults."""
    overrides = getattr(settings, "PRIVACY_RETENTION_DAYS", {}) or {}
    if str(retention) in overrides:
        return int(overrides[str(retention)])
    if retention in EVENT_DAYS:
        return EVENT_DAYS[retention]
    return RETENTION_DAYS[retention]


def _event_purgeable():
    """(model, {event: days}, age field, age days) for tenant-owned models with an event-started class."""
    for declaration in sorted(declared_models(), key=lambda d: d.model._meta.label):
        model = declaration.model
        classes = {Retention(p.retention) for p in declaration.personal.values()}
        events = classes & set(EVENT_CLASSES)
        if (not events or not classes <= set(EVENT_CLASSES) | PURGED_BY_AGE
                or model._meta.label_lower in NEVER_PURGED | GO_WITH_PARENT
                or not isinstance(model._default_manager, TenantManager)):
            continue
        needs: dict[str, int] = {}
        for retention in events:
            event = EVENT_CLASSES[retention]
            needs[event] = max(needs.get(event, 0), period_days(retention))
        aged = classes & PURGED_BY_AGE
        names = set(model_field_names(model))
        age_field = next((f for f in AGE_FIELDS if f in names), None) if aged else None
        age_days = max((period_days(c) for c in aged), default=0)
        yield model, needs, age_field, age_days


def organization_events(org) -> dict[str, object]:
    """When each retention event happened for ``org`` (absent: not yet). Read in its tenant context.

    ``relationship_ended``: it had subscriptions and none is live any more (the last one's change), or
    the organisation closed. ``tenant_unlinked``: its Microsoft tenant row has no tenant any more (its
    change), or the organisation closed. A closed organisation's last change is its closing.
    """
    events = {}
    closed_at = org.updated_at if org.status == Organization.Status.CLOSED else None
    with tenant_context(org):
        subscriptions = Subscription.objects.for_org(org)
        if subscriptions.exists() and not subscriptions.filter(status__in=LIVE_SUBSCRIPTION).exists():
            events["relationship_ended"] = subscriptions.aggregate(last=Max("updated_at"))["last"]
        tenant = MicrosoftTenant.objects.for_org(org).first()
        if tenant is not None and tenant.tenant_id is None:
            events["tenant_unlinked"] = tenant.updated_at
    if closed_at is not None:
        for event in ("relationship_ended", "tenant_unlinked"):
            events[event] = min(filter(None, [events.get(event), closed_at]))
    return events


def _event_purge(now, held_orgs, dry_run, batch_size, counts) -> None:
    plans = list(_event_purgeable())
    if not plans:
        return
    for org in organizations_across_tenants(exclude=held_orgs):
        events = organization_events(org)
        if not events:
            continue
        for model, needs, age_field, age_days in plans:
            if any(e not in events or events[e] + timedelta(days=d) > now for e, d in needs.items()):
                continue
            condition = Q(**{f"{age_field}__lt": now - timedelta(days=age_days)}) if age_field else Q()
            purged = _purge_rows(model, org, condition, dry_run, batch_size)
            if purged:
                label = model._meta.label_lower
                counts[label] = counts.get(label, 0) + purged


def _purge_rows(model, org, condition, dry_run, batch_size) -> int:
    """Delete ``org``'s rows of ``model`` matching ``condition`` in short id-ordered batches."""
    if dry_run:
        with tenant_context(org):
            return model.objects.for_org(org).filter(condition).count()
    deleted = 0
    while True:
        with tenant_context(org):
            ids = list(model.objects.for_org(org).filter(condition).order_by("pk").values_list("pk", flat=True)
                       [:batch_size])
            if ids:
                try:
                    # Issued invoices and their lines are guarded by triggers that admit only the purge.
                    with retention_purge_deletes():
                        model.objects.for_org(org).filter(pk__in=ids).delete()
                except ProtectedError:
                    # Still referenced by a row kept longer (an invoice line's subscription): it waits for it.
                    return deleted
        if not ids:
            return deleted
        deleted += len(ids)


class LegalHoldsUnreadable(RuntimeError):
    """Row-level security hides the legal holds from this connection's role: nothing may be purged or erased."""


def held_subjects() -> tuple[set, set]:
    """Organisation ids and user ids under an active legal hold (an organisation's hold covers its members).

    Every organisation's and person's holds, read as the system role (holds have row-level security). A role
    that row-level security binds would see none and let a purge or an erasure through, so that is refused
    (``LegalHoldsUnreadable``: the system role, ``SYSTEM_DATABASE_URL``, is not configured)."""
    with unscoped_no_tenant():
        if row_security_hides(LegalHold):
            raise LegalHoldsUnreadable("Legal holds cannot be read: configure the system database role.")
        active = LegalHold.objects.filter(released_at__isnull=True)
        orgs = set(active.exclude(organization__isnull=True).values_list("organization_id", flat=True))
        users = set(active.exclude(user__isnull=True).values_list("user_id", flat=True))
        users |= set(Membership.objects.filter(organization_id__in=orgs).values_list("user_id", flat=True))
    return orgs, users


def _expired(base, model, lookup, age_field, days, now, held_users):
    condition = Q(**{f"{age_field}__lt": now - timedelta(days=days)})
    condition &= ALSO_REQUIRED.get(model._meta.label_lower, Q())
    queryset = base.filter(condition)
    if lookup and held_users:
        queryset = queryset.exclude(**{f"{lookup}__in": held_users})
    return queryset


def _scopes(model, held_orgs):
    """Where to read: each organisation's context for tenant-owned rows (held ones skipped), else directly."""
    if isinstance(model._default_manager, TenantManager):
        yield from organizations_across_tenants(exclude=held_orgs)
    else:
        yield None


def _untenanted_scope(model):
    """Where a row of no organisation is purged: rows owned by one person (row-level security per person)
    across every person, rows the application role may only append (browsers' opt-outs), and privacy requests
    with their documents (seen one request or one person at a time, decision 048), so as the system role;
    anything else on the application's connection."""
    if model._meta.db_table in PERSON_SCOPED_TABLES | APPEND_ONLY_TABLES | PRIVACY_REQUEST_TABLES.keys():
        return unscoped_no_tenant
    return transaction.atomic


def retention_purge(*, dry_run: bool = False, batch_size: int = BATCH_SIZE) -> RetentionRun:
    """Purge (or with ``dry_run`` only count) every row past its retention; record the run."""
    now = timezone.now()
    held_orgs, held_users = held_subjects()
    run = RetentionRun.objects.create(started_at=now, dry_run=dry_run,
                                      held={"organizations": len(held_orgs), "people": len(held_users)})
    counts = {}
    for model, lookup, age_field, days in _purgeable():
        total = 0
        for org in _scopes(model, held_orgs):
            total += _purge_scope(model, lookup, age_field, days, now, held_users, org, dry_run, batch_size)
        if total:
            counts[model._meta.label_lower] = total
    _event_purge(now, held_orgs, dry_run, batch_size, counts)
    if not dry_run and (files := authorization_files_purge_orphans(now=now)):
        counts["privacy.authorizationdocument files"] = files
    run.counts, run.finished_at = counts, timezone.now()
    run.save(update_fields=["counts", "finished_at", "updated_at"])
    return run


def _purge_scope(model, lookup, age_field, days, now, held_users, org, dry_run, batch_size) -> int:
    scope = (lambda: tenant_context(org)) if org is not None else _untenanted_scope(model)

    def base():
        return model.objects.for_org(org) if org is not None else model._default_manager.all()

    def expired():
        return _expired(base(), model, lookup, age_field, days, now, held_users)

    if dry_run:
        with scope():
            return expired().count()
    deleted = 0
    while True:
        # One short transaction per batch: ids first, then one DELETE by primary key.
        with scope():
            ids = list(expired().order_by("pk").values_list("pk", flat=True)[:batch_size])
            if ids:
                base().filter(pk__in=ids).delete()
        if not ids:
            return deleted
        deleted += len(ids)


@transaction.atomic
def legal_hold_place(*, actor, reason: str, organization=None, user=None) -> LegalHold:
    """Suspend purging and erasure for an organisation or a person, with a reason and an owner."""
    hold = LegalHold(organization=organization, user=user, reason=(reason or "").strip(), owner=actor)
    hold.full_clean()
    hold.save()
    audit_record(actor=Actor.staff(actor), action="privacy.legal_hold_placed", organization=organization, target=hold)
    return hold


@transaction.atomic
def legal_hold_release(*, hold_id, actor) -> LegalHold:
    hold = LegalHold.objects.select_for_update().get(pk=hold_id)
    if hold.released_at is None:
        hold.released_at = timezone.now()
        hold.save(update_fields=["released_at", "updated_at"])
        audit_record(actor=Actor.staff(actor), action="privacy.legal_hold_released",
                     organization=hold.organization, target=hold)
    return hold
