"""One object of every TenantModel, per organisation, for the cross-tenant sweep.

Most models are built generically from their required fields. A model the generic
builder cannot build (a check constraint, a field type it does not know) needs an
entry in BUILDERS; the sweep fails and names the model until it has one, so a new
tenant model can never silently escape the sweep.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Callable

from django.apps import apps
from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from accounts.models import Organization
from core import fields as encrypted
from core.models import TenantModel

# model label -> builder(org, world) returning a saved instance of that model in ``org``.
BUILDERS: dict[str, Callable[[Organization, TenantWorld], models.Model]] = {}


def builder(label: str):
    def register(func):
        BUILDERS[label] = func
        return func

    return register


def tenant_models() -> list[type[TenantModel]]:
    return sorted(
        (m for m in apps.get_models() if issubclass(m, TenantModel) and not m._meta.proxy and m._meta.managed),
        key=lambda m: m._meta.label,
    )


def _org_owned(model) -> bool:
    return any(
        f.name == "organization" and f.is_relation and f.related_model is Organization
        for f in model._meta.concrete_fields
    )


def org_owned_models() -> list[type[models.Model]]:
    """Models that belong to one organisation without being TenantModels (e.g. Membership)."""

    return sorted(
        (
            m
            for m in apps.get_models()
            if not issubclass(m, TenantModel) and not m._meta.proxy and m._meta.managed and _org_owned(m)
        ),
        key=lambda m: m._meta.label,
    )


@builder("core.AuditEvent")
def _audit_event(org, world):
    from core.audit import Actor, audit_record

    return audit_record(actor=Actor.system("sweep"), action="sweep.built", organization=org)


@builder("accounts.StaffGrant")
def _staff_grant(org, world):
    """A pending request, so the approve, deny and revoke routes have something to act on."""
    from accounts.models import StaffGrant
    from accounts.tests.factories import StaffGrantFactory

    return StaffGrantFactory(organization=org, status=StaffGrant.Status.REQUESTED)


@builder("billing.Invoice")
def _invoice(org, world):
    """Issued by the real billing run, for a subscription of the organisation's own."""
    from billing.services.invoices import billing_run_organization
    from licensing.models import SeatBatch, Subscription

    start = datetime.datetime(2026, 1, 3, 9, tzinfo=datetime.UTC)
    subscription = Subscription.objects.create(
        organization=org, catalog_item_id="SWEEP:0001:AV", product_title="Sweep licence", status="active",
        quantity=2, term_duration="P1Y", billing_cycle="monthly", unit_price=decimal.Decimal("10.00"),
        start_date=start, ms_subscription_id=str(uuid.uuid4()))
    SeatBatch.objects.create(organization=org, subscription=subscription, source="purchase", quantity=2,
                             added_at=start, refundable_until=start + datetime.timedelta(days=7))
    [invoice] = billing_run_organization(organization=org, month=datetime.date(2026, 1, 1),
                                         now=datetime.datetime(2026, 2, 1, tzinfo=datetime.UTC))
    return invoice


@builder("billing.InvoiceLine")
def _invoice_line(org, world):
    from billing.models import Invoice, InvoiceLine

    return InvoiceLine.unscoped_objects.filter(invoice=world.get(Invoice, org)).first()


@builder("billing.PaymentMethod")
def _payment_method(org, world):
    from billing.gateway import TestGateway
    from billing.services.payments import payment_method_add
    from core.audit import Actor

    token = TestGateway().tokenize(number="4242424242424242", exp_month=12, exp_year=2099, cvc="123")
    return payment_method_add(organization=org, actor=Actor.system("sweep"), user=None, token=token)


@builder("billing.Payment")
def _payment(org, world):
    from billing.models import Invoice, PaymentMethod
    from billing.services.payments import invoice_pay_by_card
    from core.audit import Actor

    return invoice_pay_by_card(organization=org, actor=Actor.system("sweep"), user=None,
                               invoice=world.get(Invoice, org), method=world.get(PaymentMethod, org),
                               idempotency_key="sweep")


@builder("billing.Refund")
def _refund(org, world):
    from billing.models import Payment
    from billing.services.payments import payment_refund
    from core.audit import Actor

    return payment_refund(organization=org, actor=Actor.system("sweep"), user=None, payment=world.get(Payment, org),
                          reason="Sweep", idempotency_key="sweep-refund", amount="1.00")


class BuildError(Exception):
    pass


def _unique_text(field: models.Field) -> str:
    text = f"x{uuid.uuid4().hex}"
    return text[: field.max_length] if getattr(field, "max_length", None) else text


def sample_value(field: models.Field):
    """A valid-looking value for a required field; None when the generic builder has no answer."""
    if field.choices:
        return field.choices[0][0]
    # Encrypted fields are TextFields underneath; check them before the plain types.
    if isinstance(field, encrypted.EncryptedDateField):
        return datetime.date(2000, 1, 1)
    if isinstance(field, encrypted.EncryptedDecimalField):
        return decimal.Decimal("1")
    if isinstance(field, encrypted.EncryptedJSONField):
        return {}
    if isinstance(field, encrypted.EncryptedUUIDField):
        return uuid.uuid4()
    if isinstance(field, models.EmailField):
        return f"{uuid.uuid4().hex[:12]}@example.com"
    if isinstance(field, models.URLField):
        return f"https://example.com/{uuid.uuid4().hex[:8]}"
    if isinstance(field, models.GenericIPAddressField):
        return "192.0.2.1"
    if isinstance(field, models.UUIDField):
        return uuid.uuid4()
    if isinstance(field, (models.CharField, models.TextField)):
        return _unique_text(field)
    if isinstance(field, models.BooleanField):
        return False
    if isinstance(field, models.DecimalField):
        return decimal.Decimal("1")
    if isinstance(field, (models.IntegerField, models.FloatField)):
        return 1
    if isinstance(field, models.DateTimeField):
        return timezone.now()
    if isinstance(field, models.DateField):
        return timezone.now().date()
    if isinstance(field, models.DurationField):
        return datetime.timedelta(days=1)
    if isinstance(field, models.JSONField):
        return {}
    if isinstance(field, models.BinaryField):
        return b"x"
    return None


class TenantWorld:
    """Builds and remembers objects per organisation; related objects are shared within an org."""

    def __init__(self):
        self._cache: dict[tuple[str, str | None], models.Model] = {}
        self._users: dict[str, models.Model] = {}

    def user_for(self, org: Organization):
        from accounts.tests.factories import UserFactory

        key = str(org.pk)
        if key not in self._users:
            self._users[key] = UserFactory()
        return self._users[key]

    def get(self, model: type[models.Model], org: Organization) -> models.Model:
        tenant = issubclass(model, TenantModel) or _org_owned(model)
        key = (model._meta.label, str(org.pk) if tenant else None)
        if key not in self._cache:
            label = model._meta.label
            try:
                with transaction.atomic():
                    obj = BUILDERS[label](org, self) if label in BUILDERS else self._generic(model, org)
            except BuildError:
                raise
            except Exception as exc:
                raise BuildError(
                    f"Cannot build {label} generically ({type(exc).__name__}: {exc}). "
                    f"Add a builder for '{label}' to tests/tenant_objects.py."
                ) from exc
            self._cache[key] = obj
        return self._cache[key]

    def _generic(self, model: type[models.Model], org: Organization) -> models.Model:
        values = {}
        for field in model._meta.concrete_fields:
            if field.name == "organization" and field.is_relation and field.related_model is Organization:
                values[field.name] = org  # even where nullable: the object must belong to this org
                continue
            if field.primary_key or field.has_default() or field.null:
                continue
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                continue
            if isinstance(field, encrypted.BlindIndexField):
                continue
            if field.is_relation:
                related = field.related_model
                if related is Organization:
                    values[field.name] = org
                elif related._meta.label == settings.AUTH_USER_MODEL:
                    values[field.name] = self.user_for(org)
                else:
                    values[field.name] = self.get(related, org)
                continue
            if field.blank and isinstance(field, (models.CharField, models.TextField)):
                continue  # "" is a valid value
            value = sample_value(field)
            if value is None:
                raise BuildError(
                    f"{model._meta.label}.{field.name} ({type(field).__name__}) has no generic sample value. "
                    f"Add a builder for '{model._meta.label}' to tests/tenant_objects.py."
                )
            values[field.name] = value
        obj = model(**values)
        obj.save()
        return obj

    def build_all(self, org: Organization) -> dict[str, models.Model]:
        """One object of every tenant model in ``org``; raises BuildError naming what could not be built."""
        built, errors = {}, []
        for model in tenant_models() + org_owned_models():
            try:
                built[model._meta.label] = self.get(model, org)
            except BuildError as exc:
                errors.append(str(exc))
        if errors:
            raise BuildError("\n".join(errors))
        return built
