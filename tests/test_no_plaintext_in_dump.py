"""The proof that nothing personal is stored in plaintext: generated from the personal-data registry.

A unique marker goes into every personal field of every declared model, the database is dumped with
``pg_dump`` (what a leaked dump or backup holds), and no marker may appear in it. Personal fields that
cannot carry a marker (flags, times, links to other rows, keyed hashes computed from another field)
are named by type; the few personal text fields still kept in plaintext are listed below with the
reason, and the list must stay exact. See docs/decisions/026-nothing-personal-in-plaintext.md.
"""

from __future__ import annotations

import datetime
import decimal
import itertools
import shutil
import subprocess
import uuid

import pytest
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from accounts import services
from core.fields import (
    BlindIndexField,
    EncryptedDateField,
    EncryptedDecimalField,
    EncryptedField,
    EncryptedIPAddressField,
    EncryptedJSONField,
    EncryptedUUIDField,
)
from core.registry import declared_models

# Personal text still stored in plaintext, each with the reason. Adding to this list is a decision
# to record; the test fails when a field here becomes encrypted (take it off) or a new one appears.
KNOWN_PLAINTEXT = {
    "django_otp_webauthn.webauthncredential.aaguid": "third-party table: the authenticator model, not the person",
    "django_otp_webauthn.webauthnuserhandle.handle_hex": "third-party table: random WebAuthn user handle",
}

# The business name of the organisation made through sign-up: neither it nor its slugified form may be dumped.
SIGNUP_MARKER = "Quixwhorlbeck"

# Field types that hold no text a marker could be hidden in: flags, numbers, times, links, bytes
# (and fields with fixed choices, such as a sign-in's factor).
NO_TEXT = (
    models.BooleanField,
    models.IntegerField,
    models.DateTimeField,
    models.DateField,
    models.ForeignKey,
    models.BinaryField,
    models.DecimalField,
)


def _is_derived_hash(model, name: str, field) -> bool:
    """Keyed hashes and password hashes: computed from another value, never the value itself."""
    return (
        isinstance(field, BlindIndexField)
        or name in ("password", "code_hash", "code_hashes")
        or (name.endswith(("_index", "_hash", "_sha256")))
    )


def _label(model, name: str) -> str:
    return f"{model._meta.label_lower}.{name}"


class Seeder:
    """Builds one row of any declared model, filling required fields with plain values."""

    def __init__(self):
        self.counter = itertools.count(1)
        self.rows: dict[type, models.Model] = {}
        self.markers: dict[str, str] = {}

    def marker_for(self, model, field) -> object:
        n = next(self.counter)
        text = f"MRK{n:04d}{uuid.uuid4().hex[:8]}Z"
        label = _label(model, field.name)
        if isinstance(field, EncryptedIPAddressField):
            value = f"198.18.{n // 200}.{n % 200 + 1}"
            self.markers[label] = value
            return value
        if isinstance(field, EncryptedDateField):
            value = datetime.date(1901, 1 + n % 12, 1 + n % 28)
            self.markers[label] = value.isoformat()
            return value
        if isinstance(field, EncryptedUUIDField):
            value = uuid.uuid4()
            self.markers[label] = str(value)
            return value
        if isinstance(field, EncryptedDecimalField):
            value = decimal.Decimal(f"7{n:04d}31.4159")
            self.markers[label] = str(value)
            return value
        self.markers[label] = text
        if isinstance(field, EncryptedJSONField):
            return {"marker": text}
        return text

    def plain_value(self, field):
        n = next(self.counter)
        if field.choices:
            return field.choices[0][0]
        if isinstance(field, models.BooleanField):
            return False
        if isinstance(field, (models.IntegerField, models.DecimalField, models.FloatField)):
            return 1
        if isinstance(field, models.DateTimeField):
            return timezone.now()
        if isinstance(field, models.DateField):
            return timezone.now().date()
        if isinstance(field, models.UUIDField):
            return uuid.uuid4()
        if isinstance(field, models.JSONField):
            return {}
        if isinstance(field, models.BinaryField):
            return b"x"
        if isinstance(field, models.EmailField):
            return f"plain{n}@example.invalid"
        if isinstance(field, models.GenericIPAddressField):
            return "192.0.2.1"
        return f"plain{n}"[: field.max_length or 64]

    def row(self, model, *, optional_links: bool = False) -> models.Model:
        """Save a row of ``model``; ``optional_links`` also fills nullable links (for a check
        constraint that wants one of them)."""
        if model in self.rows:
            return self.rows[model]
        declaration = next((d for d in declared_models() if d.model is model), None)
        personal = declaration.personal if declaration else {}
        values = {}
        for field in model._meta.concrete_fields:
            if field.primary_key and (field.has_default() or isinstance(field, models.AutoField)):
                continue
            if field.is_relation:
                optional = field.null and field.name not in personal
                if field.related_model is model or (optional and not optional_links):
                    continue
                values[field.name] = self.row(field.related_model)
                continue
            if field.name in personal and isinstance(field, EncryptedField):
                values[field.name] = self.marker_for(model, field)
            elif isinstance(field, EncryptedField):
                values[field.name] = None if field.null else self.plain_value_for_encrypted(field)
            elif (
                field.has_default()
                or field.null
                or getattr(field, "auto_now", False)
                or getattr(field, "auto_now_add", False)
            ):
                continue
            else:
                values[field.name] = self.plain_value(field)
        instance = model(**values)
        instance.save()
        self.rows[model] = instance
        return instance

    def plain_value_for_encrypted(self, field):
        if isinstance(field, EncryptedJSONField):
            return {}
        if isinstance(field, EncryptedDateField):
            return timezone.now().date()
        if isinstance(field, EncryptedDecimalField):
            return decimal.Decimal("1")
        if isinstance(field, EncryptedIPAddressField):
            return "192.0.2.1"
        return "plain"


def personal_text_fields():
    """(model, name, field) for every personal field that can carry a marker (test-only models aside)."""
    for declaration in declared_models():
        if ".tests." in declaration.model.__module__:
            continue
        for name in declaration.personal:
            field = declaration.model._meta.get_field(name)
            if isinstance(field, NO_TEXT) or field.choices or _is_derived_hash(declaration.model, name, field):
                continue
            yield declaration.model, name, field


def test_every_plaintext_personal_text_field_is_a_named_exception(db):
    plaintext = {
        _label(model, name) for model, name, field in personal_text_fields() if not isinstance(field, EncryptedField)
    }
    assert plaintext == set(KNOWN_PLAINTEXT), (
        f"new plaintext personal fields: {sorted(plaintext - set(KNOWN_PLAINTEXT))}; "
        f"encrypted now, take off the list: {sorted(set(KNOWN_PLAINTEXT) - plaintext)}"
    )


@pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_dump needs Postgres (run with DATABASE_URL)")
@pytest.mark.skipif(shutil.which("pg_dump") is None, reason="pg_dump is not installed")
@pytest.mark.django_db(transaction=True)
def test_pg_dump_holds_no_marker_from_any_personal_field():
    seeder = Seeder()
    failed = {}
    for model in sorted(
        {m for m, _, f in personal_text_fields() if isinstance(f, EncryptedField)}, key=lambda m: m._meta.label
    ):
        try:
            with transaction.atomic():
                seeder.row(model)
        except IntegrityError:
            # Rows saved inside the failed attempt were rolled back with it: forget them.
            seeder.rows = {m: r for m, r in seeder.rows.items() if r.pk and m._base_manager.filter(pk=r.pk).exists()}
            try:
                with transaction.atomic():
                    seeder.row(model, optional_links=True)
            except (IntegrityError, ValueError) as exc:
                failed[model._meta.label] = str(exc)
        except ValueError as exc:
            failed[model._meta.label] = str(exc)
    assert not failed, f"could not seed a row of: {failed}"
    # An organisation whose slug the sign-up service chose (its URL slug once spelled the name: decision 041).
    # Built and inserted as sign-up does, without sign-up's audit events: the seeder's own event holds the
    # chain's first sequence number.
    signed_up = services._organization_build(legal_name=f"{SIGNUP_MARKER} Holdings Ltd", business_name=SIGNUP_MARKER,
                                             country="GB", time_zone="Europe/London")
    services._organization_insert(signed_up)
    seeded = {_label(m, n) for m, n, f in personal_text_fields() if isinstance(f, EncryptedField)}
    assert seeded <= set(seeder.markers), sorted(seeded - set(seeder.markers))

    settings = connection.settings_dict
    dump = subprocess.run(
        [
            "pg_dump",
            "--data-only",
            "--no-owner",
            "-h",
            settings["HOST"] or "127.0.0.1",
            "-p",
            str(settings["PORT"] or 5432),
            "-U",
            settings["USER"] or "postgres",
            settings["NAME"],
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    # The test bites: the dump holds the seeded rows, and plaintext columns show up in it (the slug is plaintext,
    # which is why it is neutral).
    organization = next(row for model, row in seeder.rows.items() if model._meta.label == "accounts.Organization")
    assert organization.slug.startswith("plain") and organization.slug in dump
    assert signed_up.slug in dump and SIGNUP_MARKER.casefold() not in dump.casefold()
    leaked = {label: marker for label, marker in seeder.markers.items() if marker in dump}
    assert not leaked, f"plaintext found in pg_dump: {leaked}"
