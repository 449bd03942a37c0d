"""The personal-data registry: every field of every project model is classified.

Models declare themselves next to their definition with :func:`declare`. The
system check in ``core/checks.py`` fails on any field that is not classified,
so a new field cannot silently escape the privacy workflows that read this
registry: access reports and portability exports (``privacy/access_report.py``:
which fields are shown verbatim and which described, ``Personal.verbatim``),
erasure (``privacy/services/erasure.py``: erased or kept by retention class) and
the retention purge (``privacy/services/retention.py``: time-limited classes).
The disclosure log's categories are this module's :class:`Category`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import models


class Category(models.TextChoices):
    IDENTITY = "identity", "Identity"
    CONTACT = "contact", "Contact"
    BILLING = "billing", "Billing"
    TENANT = "tenant", "Tenant"
    TECHNICAL_LOG = "technical_log", "Technical log"
    SECURITY = "security", "Security"
    PAYMENT_TOKEN = "payment_token", "Payment token"


class Subject(models.TextChoices):
    """Whose data it is."""

    PORTAL_USER = "portal_user", "Portal user (customer admin or staff)"
    ORGANIZATION = "organization", "Customer organisation and its contacts"
    DIRECTORY_USER = "directory_user", "User in the customer's Microsoft tenant"
    VISITOR = "visitor", "Visitor without an account (known only by a browser cookie)"
    REQUESTER = "requester", "Person who made a privacy request (with or without an account)"


class Retention(models.TextChoices):
    """How long a value may be kept. The purge (privacy/services/retention.py) enforces the classes
    measured from a row's own date (security log, technical log, privacy records) and, for tenant-owned
    rows, the event-started ones (subscriptions ended, tenant unlinked, organisation closed); ``account``
    data goes with the account (erasure)."""

    ACCOUNT = "account", "While the account exists"
    ACTIVE_PLUS_LEGAL = "active_plus_legal", "While subscriptions are active, then the legal period (7 years)"
    SECURITY_LOG = "security_log", "Security log: 400 days"
    TECHNICAL_LOG = "technical_log", "Technical log: 90 days"
    TENANT_LINK = "tenant_link", "While the Microsoft tenant is linked"
    BILLING_RECORD = "billing_record", "Invoices and billing records: the legal and tax period after the relationship"
    PRIVACY_RECORD = "privacy_record", "Privacy request and opt-out records: 24 months"


# The periods the retention purge (privacy/services/retention.py) enforces for the classes measured
# from a row's own date; None: kept while the thing it belongs to exists.
RETENTION_DAYS = {
    Retention.ACCOUNT: None,
    Retention.ACTIVE_PLUS_LEGAL: 7 * 365,
    Retention.SECURITY_LOG: 400,
    Retention.TECHNICAL_LOG: 90,
    Retention.TENANT_LINK: None,
    # The legal and tax period after the relationship ends: 7 years by default; PRIVACY_RETENTION_DAYS overrides
    # any class per deployment (privacy/services/retention.py).
    Retention.BILLING_RECORD: 7 * 365,
    Retention.PRIVACY_RECORD: 730,
}

# Inherited from core.models.BaseModel / TenantModel: structural, never personal.
STRUCTURAL_FIELDS = frozenset({"id", "created_at", "updated_at", "organization"})


@dataclass(frozen=True)
class Personal:
    """A personal field: its category, its retention, and whether it is a secret.

    A secret (a password hash, a second-factor key, a session key) is held about the person but
    never shown to them verbatim: access reports say it is held (CCPA §7024(d)). Payment tokens
    are always treated so.
    """

    category: Category
    retention: Retention = Retention.ACCOUNT
    secret: bool = False

    @property
    def verbatim(self) -> bool:
        """Whether an access report may show the value itself, rather than describe it."""
        return not self.secret and self.category != Category.PAYMENT_TOKEN


@dataclass
class ModelDeclaration:
    model: type[models.Model]
    subject: Subject | None
    subject_lookup: str | None
    personal: dict[str, Personal] = field(default_factory=dict)
    not_personal: frozenset[str] = frozenset()

    def classification(self, field_name: str) -> Personal | bool | None:
        """Personal(...) for personal fields, None for non-personal, False when unclassified."""
        if field_name in self.personal:
            return self.personal[field_name]
        if field_name in self.not_personal or field_name in STRUCTURAL_FIELDS:
            return None
        return False


@dataclass(frozen=True)
class PersonalFieldRef:
    model: type[models.Model]
    field_name: str
    subject: Subject
    subject_lookup: str
    classification: Personal


_declarations: dict[str, ModelDeclaration] = {}


def _key(model: type[models.Model]) -> str:
    return model._meta.label_lower


def declare(
    model: type[models.Model],
    *,
    subject: Subject | None = None,
    subject_lookup: str | None = None,
    personal: dict[str, Personal] | None = None,
    not_personal: Iterable[str] = (),
) -> type[models.Model]:
    """Classify every field of ``model``.

    ``subject_lookup`` is the ORM path from a row of ``model`` to the subject's
    identifying row (``"pk"`` for the subject's own table, ``"user"`` for a row
    belonging to a portal user), so DSAR code can find all of one person's rows.
    """
    personal = personal or {}
    if personal and subject is None:
        raise ValueError(f"{model.__name__}: personal fields need a data subject.")
    overlap = set(personal) & set(not_personal)
    if overlap:
        raise ValueError(f"{model.__name__}: fields both personal and not personal: {sorted(overlap)}")
    _declarations[_key(model)] = ModelDeclaration(
        model=model,
        subject=subject,
        subject_lookup=subject_lookup,
        personal=dict(personal),
        not_personal=frozenset(not_personal),
    )
    return model


def declaration_for(model: type[models.Model]) -> ModelDeclaration | None:
    return _declarations.get(_key(model))


def declared_models() -> list[ModelDeclaration]:
    return list(_declarations.values())


def personal_fields(subject: Subject | None = None, category: Category | None = None) -> list[PersonalFieldRef]:
    """All personal fields, optionally of one subject or category, across all models."""
    refs = []
    for declaration in _declarations.values():
        if subject is not None and declaration.subject != subject:
            continue
        for name, classification in declaration.personal.items():
            if category is not None and classification.category != category:
                continue
            refs.append(
                PersonalFieldRef(
                    model=declaration.model,
                    field_name=name,
                    subject=declaration.subject,
                    subject_lookup=declaration.subject_lookup,
                    classification=classification,
                )
            )
    return refs


def model_field_names(model: type[models.Model]) -> list[str]:
    """The concrete and many-to-many fields a model stores (reverse relations excluded)."""
    return [f.name for f in model._meta.get_fields() if f.concrete or (f.many_to_many and not f.auto_created)]
