"""Changing an organisation's licensing settings: owner approval of orders, inactivity and reminders."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from core.audit import Actor, audit_record
from licensing.models import LicensingSettings

# What a caller may change. The approval fields are an owner's (Perm.ORG_SETTINGS); the reporting
# fields a license admin's too: the settings page passes only what the member may change.
APPROVAL_FIELDS = ("approval_threshold", "currency")
REPORTING_FIELDS = ("inactive_days", "reminder_offsets", "email_notifications")


def _plain(value):
    return str(value) if value is not None and not isinstance(value, bool | int | list) else value


@transaction.atomic
def licensing_settings_update(*, organization, actor: Actor, changes: dict) -> LicensingSettings:
    """Apply ``changes`` (a subset of APPROVAL_FIELDS + REPORTING_FIELDS) to the one settings row, audited."""
    unknown = set(changes) - set(APPROVAL_FIELDS + REPORTING_FIELDS)
    if unknown:
        raise ValidationError(f"Not a licensing setting: {', '.join(sorted(unknown))}.")
    current = LicensingSettings.objects.for_org(organization).select_for_update().first()
    current = current or LicensingSettings(organization=organization)
    before = {name: _plain(getattr(current, name)) for name in changes}
    for name, value in changes.items():
        setattr(current, name, list(value) if name == "reminder_offsets" else value)
    current.full_clean()
    current.save()
    after = {name: _plain(getattr(current, name)) for name in changes}
    audit_record(actor=actor, action="licensing_settings.updated", organization=organization, target=current,
                 metadata={name: {"from": before[name], "to": after[name]} for name in changes
                           if before[name] != after[name]})
    return current
