"""The personal-data registry: every field of every project model is classified.

Models declare themselves next to their definition with :func:`declare`. The
system check in ``core/checks.py`` fails on any field that is not classified,
so no field is left without a category and a retention class. Today the check and
tests/test_rls.py (row-level security on every personal table) read the declarations,
and the disclosure log names its categories. DSAR export, erasure and the retention
engine are not yet built (the privacy workflows will read this registry), so a
classification here is a promise they must keep.
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


class Retention(models.TextChoices):
    """How long a value may be kept. Nothing purges by these yet: the retention engine is not yet built."""

    ACCOUNT = "account", "While the account exists"
    ACTIVE_PLUS_LEGAL = "active_plus_legal", "While subscriptions are active, then the legal period (7 years)"
    SECURITY_LOG = "security_log", "Security log: 400 days"
    TECHNICAL_LOG = "technical_log", "Technical log: 90 days"
    TENANT_LINK = "tenant_link", "While the Microsoft tenant is linked"


# The periods the retention engine will enforce; nothing reads them yet.
RETENTION_DAYS = {
    Retention.ACCOUNT: None,
    Retention.ACTIVE_PLUS_LEGAL: 7 * 365,
    Retention.SECURITY_LOG: 400,
    Retention.TECHNICAL_LOG: 90,
    Retention.TENANT_LINK: None,
}

# Inherited from core.models.BaseModel / TenantModel: structural, never personal.
STRUCTURAL_FIELDS = frozenset({"id", "created_at", "updated_at", "organization"})


@dataclass(frozen=True)
class Personal:
    category: Category
    retention: Retention = Retention.ACCOUNT


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
