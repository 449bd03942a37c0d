"""The retention purge: rows whose retention period has run out are deleted, nightly, in batches.

Driven by the registry. A model is purged by age when every personal field it declares has a
time-limited class measured from the row's own date (the security log, 400 days; the technical log,
90 days; privacy records, 24 months: ``PURGED_BY_AGE``); the row goes once its longest period has
passed. Classes that start from an event (``active_plus_legal``: from the end of the subscriptions;
``account``; ``tenant_link``) are not purged by age: their triggers (account closed, subscription
cancelled, relationship ended) are not built yet, so those rows are kept.

Each batch is its own short transaction (ids first, then one ``DELETE ... WHERE id IN``), so no lock
is held for long and the API keeps answering. Legal holds (:class:`~privacy.models.LegalHold`) exempt a
person's or an organisation's rows and are reported. A dry run counts without deleting. Every run is
recorded with its counts per data set, never the data. A second run finds nothing left to purge.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Membership, Organization
from core.audit import Actor, audit_record
from core.registry import RETENTION_DAYS, Retention, Subject, declared_models, model_field_names
from core.tenancy import TenantManager, tenant_context
from privacy.models import LegalHold, PrivacyRequest, RetentionRun

PURGED_BY_AGE = frozenset({Retention.SECURITY_LOG, Retention.TECHNICAL_LOG, Retention.PRIVACY_RECORD})
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
        days = max(RETENTION_DAYS[Retention(c)] for c in classes)
        lookup = declaration.subject_lookup if declaration.subject == Subject.PORTAL_USER else None
        yield model, lookup, age_field, days


def held_subjects() -> tuple[set, set]:
    """Organisation ids and user ids under an active legal hold (an organisation's hold covers its members)."""
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
        yield from Organization.objects.exclude(pk__in=held_orgs).order_by("pk")
    else:
        yield None


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
    run.counts, run.finished_at = counts, timezone.now()
    run.save(update_fields=["counts", "finished_at", "updated_at"])
    return run


def _purge_scope(model, lookup, age_field, days, now, held_users, org, dry_run, batch_size) -> int:
    scope = (lambda: tenant_context(org)) if org is not None else transaction.atomic

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
