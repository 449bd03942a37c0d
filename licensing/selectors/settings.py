"""The organisation's licensing settings, read by purchases (approval), usage reports and reminders."""

from __future__ import annotations

from licensing.models import LicensingSettings


def licensing_settings(organization) -> LicensingSettings:
    """The organisation's settings, or unsaved defaults when it never changed them."""
    return LicensingSettings.objects.for_org(organization).first() or LicensingSettings(organization=organization)
