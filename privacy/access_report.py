"""What an access report and a portability export contain, read from the personal-data registry.

An access report covers one portal user (the requester's account) since 2022-01-01 (the policy's
promise, beyond CCPA §7024(h)'s minimum): every model the registry declares for the portal-user
subject (which brings sign-in events, sessions, MFA devices and the audit events they made), audit
events about them, the licenses, subscriptions and orders they touched (:func:`touched_sections`), the
disclosures of their organisations' data with named recipients, and the
retention applying to each category. Values that must not be disclosed verbatim (secrets such as
password hashes and second-factor keys, payment tokens, blind indexes: CCPA §7024(d);
``Personal.verbatim`` in the registry) are described, never shown.

A directory user (a person in a customer's Entra directory, ``licensing.DirectoryUser``) is a subject
too (:func:`directory_sections`): every model the registry declares for the directory-user subject
(their directory fields including the last sign-in Graph reported, license assignments, bulk-job rows
naming them), audit events about them, corrections of their data, the disclosures of their
organisation's directory data to Microsoft, and the retention applying. Each person found is read in
their own organisation's tenant context.

A portability export covers one organisation: every tenant-owned model of the licensing and billing
floors (subscriptions, orders, licenses, directory, usage), all fields, for that organisation only.

Rows are read in primary-key order through one server-side cursor per source, in batches, as
dictionaries rather than model instances, so memory stays flat whatever the subject's history. Tenant
rows are read inside that organisation's tenant context; the only cross-tenant read is
:func:`subject_account_events` (a person's own audit events that belong to no organisation, such as
account creation), allowed by name in tests/test_tenancy_guard.py.
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from itertools import islice

from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import Case, CharField, Q, Value, When

from accounts.models import Membership, Organization
from core.fields import BlindIndexField, EncryptedField
from core.models import AuditEvent, Disclosure, FieldLock
from core.registry import Category, Retention, Subject, declaration_for, declared_models, model_field_names
from core.tenancy import TenantManager, person_context, tenant_context, unscoped_no_tenant
from privacy.models import Correction

REPORT_SINCE = datetime.datetime(2022, 1, 1, tzinfo=datetime.UTC)
TIME_FIELDS = ("occurred_at", "created_at", "date_joined", "recorded_at", "received_at")
PORTABILITY_APPS = frozenset({"licensing", "billing"})
BATCH_SIZE = 2000


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    category: str = ""
    shown: bool = True


@dataclass
class Section:
    key: str
    title: str
    columns: list[ColumnSpec]
    # Each source: the scope to read in (a context manager factory) and the queryset to page through.
    sources: list[tuple[Callable[[], AbstractContextManager], Callable[[], models.QuerySet]]] = field(
        default_factory=list
    )
    rows: Callable[[], Iterator[dict]] | None = None  # for sections not read from a model
    _plan: _ReadPlan | None = field(default=None, repr=False)

    def count(self) -> int:
        if self.rows is not None:
            return sum(1 for _ in self.rows())
        total = 0
        for scope, make in self.sources:
            with scope():
                total += make().count()
        return total

    def iter_rows(self, batch_size: int = BATCH_SIZE) -> Iterator[list[dict]]:
        """Rows in batches, each source read by one query through a server-side cursor.

        Paging by primary key instead re-ran the query per page, and unless an index serves the
        subject's rows in key order, each page scanned and sorted every row left: quadratic in the
        subject's history. A source is read inside its scope, so a tenant source's transaction stays
        open while its batches are written (progress written meanwhile shows when the source ends).
        Close the iterator (``contextlib.closing``) so that a failure ends that transaction before
        anything else is written.
        """
        if self.rows is not None:
            yield list(self.rows())
            return
        for scope, make in self.sources:
            with scope():
                queryset = make().order_by("pk")
                if self._plan is None:
                    self._plan = _ReadPlan.for_columns(queryset, self.columns)
                rows = self._plan.rows(queryset, batch_size)
                while batch := list(islice(rows, batch_size)):
                    yield batch


@dataclass(frozen=True)
class _Column:
    name: str
    attname: str
    placeholder: str | None  # what a value that is held but not shown reads as; None: shown
    encrypted: EncryptedField | None


@dataclass(frozen=True)
class _ReadPlan:
    """How a section's rows are read, worked out once per section.

    Rows are read as dictionaries (``values()``), never as model instances: building and decrypting
    200,000 instances was most of a large report's time. An encrypted column is decrypted with its
    row's binding columns, read alongside (``EncryptedField.decrypt_values``: the same key and
    associated data as through the instance). Only a column that is neither a concrete field nor an
    annotation (a many-to-many, a property) makes the section fall back to instances.
    """

    columns: tuple[_Column, ...]
    selected: tuple[str, ...]  # the columns shown, and the binding columns of encrypted ones
    needs_instances: bool

    @classmethod
    def for_columns(cls, queryset, specs) -> _ReadPlan:
        model, columns, selected, needs_instances = queryset.model, [], ["pk"], False
        for spec in specs:
            placeholder = None if spec.shown else f"Held, not shown ({spec.category.replace('_', ' ')})"
            try:
                model_field = model._meta.get_field(spec.name)
            except FieldDoesNotExist:  # an annotation, such as the role in a "touched" section
                needs_instances |= spec.name not in queryset.query.annotations
                columns.append(_Column(spec.name, spec.name, placeholder, None))
                selected.append(spec.name)
                continue
            needs_instances |= not model_field.concrete
            encrypted = model_field if isinstance(model_field, EncryptedField) else None
            attname = getattr(model_field, "attname", spec.name)
            columns.append(_Column(spec.name, attname, placeholder, encrypted))
            selected += [attname, *(encrypted.binding_attnames if encrypted else ())]
        return cls(tuple(columns), tuple(dict.fromkeys(selected)), needs_instances)

    def rows(self, queryset, chunk_size: int) -> Iterator[dict]:
        if self.needs_instances:
            yield from (self._row_of(obj) for obj in queryset.iterator(chunk_size=chunk_size))
            return
        for values in queryset.values(*self.selected).iterator(chunk_size=chunk_size):
            row = {}
            for column in self.columns:
                value = values[column.attname]
                if column.encrypted is not None and value is not None:
                    value = column.encrypted.decrypt_values(value, values)
                row[column.name] = plain(value) if column.placeholder is None else (column.placeholder if value else "")
            yield row

    def _row_of(self, obj) -> dict:
        row = {}
        for column in self.columns:
            value = getattr(obj, column.attname, None)
            row[column.name] = plain(value) if column.placeholder is None else (column.placeholder if value else "")
        return row


def plain(value):
    """A JSON-safe value: ISO dates, strings for ids and decimals, lists and dicts kept."""
    if value is None:
        return ""
    if type(value) is str:  # the common case first: a report is mostly strings
        return value
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, bool | int | float | str | list | dict):
        return value
    return str(value)


def _time_field(model) -> str | None:
    names = set(model_field_names(model))
    return next((n for n in TIME_FIELDS if n in names), None)


def _verbatim(model, name: str, personal) -> bool:
    """Secrets and payment tokens are described; so are blind indexes (a keyed hash means nothing to a reader)."""
    return personal.verbatim and not isinstance(model._meta.get_field(name), BlindIndexField)


def _subject_columns(declaration, time_field: str | None) -> list[ColumnSpec]:
    """The id, the row's time, then every personal field (the time once, though it is personal too)."""
    model = declaration.model
    columns = [ColumnSpec("id"), *([ColumnSpec(time_field)] if time_field else [])]
    columns += [ColumnSpec(name, c.category, _verbatim(model, name, c))
                for name, c in declaration.personal.items() if name != time_field]
    return columns


def _is_tenant_model(model) -> bool:
    return isinstance(model._default_manager, TenantManager) and "organization" in model_field_names(model)


def subject_account_events(user) -> tuple[Callable[[], AbstractContextManager], Callable[[], models.QuerySet]]:
    """A person's own audit events that belong to no organisation (account creation, sign-in changes),
    as a section source: read inside ``unscoped_no_tenant()``, which Postgres row-level security
    requires for rows without an organisation."""
    return (
        unscoped_no_tenant,
        lambda: (
            AuditEvent.unscoped_objects.filter(organization__isnull=True)
            .filter(Q(actor_id=str(user.pk)) | Q(target_id=str(user.pk)))
            .filter(occurred_at__gte=REPORT_SINCE)
        ),
    )


def user_organizations(user) -> list[Organization]:
    """Every organisation the person belongs to, active or not, read in their own context (row-level security
    shows a person their memberships and organisations, decision 044)."""
    with person_context(user):
        return [m.organization for m in Membership.objects.filter(user=user).select_related("organization")]


def access_sections(user) -> list[Section]:
    organizations = user_organizations(user)
    sections = []
    for declaration in sorted(declared_models(), key=lambda d: d.model._meta.label):
        model = declaration.model
        if declaration.subject != Subject.PORTAL_USER or not declaration.subject_lookup:
            continue
        time_field = _time_field(model)
        columns = _subject_columns(declaration, time_field)
        if model is AuditEvent:
            columns += [ColumnSpec("action"), ColumnSpec("target_type"), ColumnSpec("target_id")]
        lookup = Q(**{declaration.subject_lookup: user.pk})
        if model is AuditEvent:
            lookup |= Q(target_id=str(user.pk))
        since = Q(**{f"{time_field}__gte": REPORT_SINCE}) if time_field else Q()
        section = Section(model._meta.label_lower, str(model._meta.verbose_name_plural).capitalize(), columns)
        if _is_tenant_model(model):
            for org in organizations:
                section.sources.append(
                    (
                        lambda o=org: tenant_context(o),
                        lambda m=model, o=org, q=lookup & since: m.objects.for_org(o).filter(q),
                    )
                )
            if model is AuditEvent:
                section.sources.append(subject_account_events(user))
        else:
            # The person's own rows; row-level security shows the application role no one else's.
            section.sources.append(
                (lambda u=user: person_context(u), lambda m=model, q=lookup & since: m._default_manager.filter(q))
            )
        sections.append(section)
    sections += touched_sections(user, organizations)
    sections.append(disclosure_section(organizations))
    sections.append(retention_section(Subject.PORTAL_USER))
    return sections


def touched_sections(user, organizations) -> list[Section]:
    """Licenses, subscriptions and orders the person touched: every licensing and billing row of their
    organisations whose user link (requested, approved, created, decided, recorded by...) names them,
    with the role it names them in. Only the row's non-personal fields are shown: who was assigned a
    license is the directory user's data, not the requester's. Models whose registry subject is the
    portal user through that link already have their own section."""
    sections = []
    for model in sorted(apps.get_models(), key=lambda m: m._meta.label):
        if model._meta.app_label not in PORTABILITY_APPS or not _is_tenant_model(model):
            continue
        links = [f.name for f in model._meta.concrete_fields
                 if f.is_relation and f.related_model._meta.label == settings.AUTH_USER_MODEL]
        declaration = declaration_for(model)
        if declaration is not None and declaration.subject == Subject.PORTAL_USER:
            links = [name for name in links if name != declaration.subject_lookup]
        if not links:
            continue
        time_field = _time_field(model)
        shown = [
            f.name for f in model._meta.concrete_fields
            if not f.is_relation and f.name not in ("id", time_field)
            and (declaration is None or declaration.classification(f.name) is None)
        ]
        columns = [ColumnSpec("id"), *([ColumnSpec(time_field)] if time_field else []), ColumnSpec("your_role"),
                   *(ColumnSpec(n) for n in shown)]
        named = Q()
        for link in links:
            named |= Q(**{link: user.pk})
        role = Case(*(When(**{link: user.pk}, then=Value(link.replace("_", " "))) for link in links),
                    output_field=CharField())
        since = Q(**{f"{time_field}__gte": REPORT_SINCE}) if time_field else Q()
        section = Section(f"touched-{model._meta.label_lower}",
                          f"Licenses and orders you touched: {model._meta.verbose_name_plural}", columns)
        for org in organizations:
            section.sources.append((
                partial(tenant_context, org),
                lambda m=model, o=org, q=named & since, r=role: m.objects.for_org(o).filter(q).annotate(your_role=r),
            ))
        sections.append(section)
    return sections


def directory_sections(people) -> list[Section]:
    """Sections for directory users (``DirectoryUser`` rows, possibly in several organisations) who are one person."""
    sections = []
    for declaration in sorted(declared_models(), key=lambda d: d.model._meta.label):
        model = declaration.model
        if declaration.subject != Subject.DIRECTORY_USER or not declaration.subject_lookup:
            continue
        columns = _subject_columns(declaration, _time_field(model))
        section = Section(f"directory-{model._meta.label_lower}",
                          f"Directory: {str(model._meta.verbose_name_plural).capitalize()}", columns)
        for person in people:
            section.sources.append((
                lambda p=person: tenant_context(p.organization_id),
                lambda m=model, p=person, lookup=declaration.subject_lookup: m.objects.for_org(p.organization_id)
                .filter(**{lookup: p.pk}),
            ))
        sections.append(section)
    audit = Section("directory-audit", "Directory: activity log entries about you",
                    [ColumnSpec(n) for n in ("id", "occurred_at", "actor_type", "action", "target_type", "metadata")])
    corrections = Section("directory-corrections", "Directory: corrections of your data",
                          [ColumnSpec(n) for n in ("id", "created_at", "field_name", "old_value", "new_value",
                                                   "reason")])
    locks = Section("directory-restrictions", "Directory: fields locked or restricted (GDPR Art. 18)",
                    [ColumnSpec(n) for n in ("id", "created_at", "field_name", "restricted_at")])
    for person in people:
        scope = partial(tenant_context, person.organization_id)
        audit.sources.append((scope, lambda p=person: AuditEvent.objects.for_org(p.organization_id).filter(
            target_id=str(p.pk), occurred_at__gte=REPORT_SINCE)))
        corrections.sources.append((scope, lambda p=person: Correction.objects.for_org(p.organization_id).filter(
            model_label="licensing.directoryuser", object_id=str(p.pk))))
        locks.sources.append((scope, lambda p=person: FieldLock.objects.for_org(p.organization_id).filter(
            model_label="licensing.directoryuser", object_id=str(p.pk))))
    organizations = sorted({p.organization_id for p in people}, key=str)
    disclosures = disclosure_section(organizations, purposes=DIRECTORY_PURPOSES)
    disclosures.key, disclosures.title = "directory-disclosures", (
        "Directory: disclosures of your organisation's directory data (named recipients)")
    retention = retention_section(Subject.DIRECTORY_USER)
    retention.key, retention.title = "directory-retention", "Directory: how long each category is kept"
    return [*sections, audit, corrections, locks, disclosures, retention]


# The purposes for which a customer's directory data goes to Microsoft (licensing/microsoft/graph.py).
DIRECTORY_PURPOSES = (Disclosure.Purpose.LICENSE_MANAGEMENT, Disclosure.Purpose.PROVISIONING,
                      Disclosure.Purpose.SECURITY, Disclosure.Purpose.LEGAL_OBLIGATION)


def disclosure_section(organizations, purposes=None) -> Section:
    columns = [ColumnSpec(n) for n in ("occurred_at", "recipient", "categories", "purpose", "operation")]
    section = Section("disclosures", "Disclosures of your organisations' data (named recipients)", columns)
    only = Q(purpose__in=purposes) if purposes else Q()
    for org in organizations:
        section.sources.append(
            (partial(tenant_context, org),
             lambda o=org: Disclosure.objects.filter(only, organization=o, occurred_at__gte=REPORT_SINCE))
        )
    return section


def retention_section(subject: str) -> Section:
    def rows():
        seen = {}
        for declaration in declared_models():
            if declaration.subject != subject:
                continue
            for personal in declaration.personal.values():
                seen.setdefault((personal.category, personal.retention), None)
        for category, retention in sorted(seen):
            yield {"category": Category(category).label, "retention": Retention(retention).label}

    return Section(
        "retention", "How long each category is kept", [ColumnSpec("category"), ColumnSpec("retention")], rows=rows
    )


def portability_sections(organization) -> list[Section]:
    sections = []
    for model in sorted(apps.get_models(), key=lambda m: m._meta.label):
        if model._meta.app_label not in PORTABILITY_APPS or not _is_tenant_model(model):
            continue
        declaration = declaration_for(model)
        columns = []
        for name in model_field_names(model):
            classification = declaration.classification(name) if declaration else None
            if classification:
                columns.append(ColumnSpec(name, classification.category, _verbatim(model, name, classification)))
            else:
                columns.append(ColumnSpec(name))
        section = Section(model._meta.label_lower, str(model._meta.verbose_name_plural).capitalize(), columns)
        section.sources.append(
            (lambda o=organization: tenant_context(o), lambda m=model, o=organization: m.objects.for_org(o))
        )
        sections.append(section)
    return sections


def as_csv_cell(value) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True)
    return str(value)
