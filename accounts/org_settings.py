"""The organisation's own details: names, country, time zone, tax id and billing address."""

from __future__ import annotations

import re
import zoneinfo

from django.core.exceptions import ValidationError
from django.db import transaction
from stdnum import get_cc_module
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError as StdnumValidationError

from core.audit import audit_record

from .models import ApiKey, Organization, User
from .team import audit_actor

# Changing these needs a recent second-factor check: they end up on invoices.
BILLING_FIELDS = frozenset({"tax_id", "billing_address"})
ADDRESS_KEYS = ("line1", "line2", "city", "region", "postal_code", "country")
_GENERIC_TAX_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ./-]{2,39}$")


def validate_time_zone(time_zone: str) -> str:
    if time_zone not in zoneinfo.available_timezones():
        raise ValidationError({"time_zone": "Choose a time zone from the list, for example Europe/Berlin."})
    return time_zone


def _tax_validator(country: str):
    """python-stdnum's validator for the country's business tax number, if it has one."""
    cc = country.lower()
    if cc in eu_vat.MEMBER_STATES:
        return eu_vat, "EL" if cc == "gr" else country.upper()
    for name in ("ein", "vat"):
        module = get_cc_module(cc, name)
        if module is not None:
            return module, ""
    return None, ""


def normalise_tax_id(tax_id: str, country: str) -> str:
    """Validate and return the tax id in its compact form; a clear error if it is not valid."""
    tax_id = (tax_id or "").strip()
    if not tax_id:
        return ""
    module, prefix = _tax_validator(country)
    if module is None:
        if not _GENERIC_TAX_ID.match(tax_id):
            raise ValidationError({"tax_id": "Use 3 to 40 letters, digits, spaces, dots, slashes or dashes."})
        return tax_id
    candidates = [tax_id]
    if prefix and not tax_id[:2].isalpha():
        candidates.insert(0, prefix + tax_id)
    for candidate in candidates:
        try:
            return module.validate(candidate)
        except StdnumValidationError:
            continue
    name = getattr(module, "__doc__", "") or "tax number"
    raise ValidationError({"tax_id": f"This is not a valid {name.splitlines()[0].rstrip('.')} for {country}."})


def normalise_address(address: dict | None) -> dict | None:
    if not address:
        return None
    cleaned = {key: str(address.get(key) or "").strip() for key in ADDRESS_KEYS}
    if not any(cleaned.values()):
        return None
    missing = [key for key in ("line1", "city", "postal_code", "country") if not cleaned[key]]
    if missing:
        raise ValidationError({"billing_address": "Give at least the street, city, postal code and country."})
    cleaned["country"] = cleaned["country"].upper()
    if not re.fullmatch(r"[A-Z]{2}", cleaned["country"]):
        raise ValidationError({"billing_address": "Use a two-letter ISO country code for the address."})
    return cleaned


@transaction.atomic
def organization_settings_update(
    *,
    organization: Organization,
    actor: User | ApiKey,
    legal_name: str,
    business_name: str,
    country: str,
    time_zone: str,
    tax_id: str,
    billing_address: dict | None,
) -> Organization:
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    country = (country or "").strip().upper()
    validate_time_zone(time_zone)
    new_values = {
        "legal_name": (legal_name or "").strip(),
        "business_name": (business_name or "").strip(),
        "country": country,
        "time_zone": time_zone,
        "tax_id": normalise_tax_id(tax_id, country),
        "billing_address": normalise_address(billing_address),
    }
    changed = sorted(field for field, value in new_values.items() if getattr(organization, field) != value)
    if not changed:
        return organization
    for field in changed:
        setattr(organization, field, new_values[field])
    organization.full_clean(exclude=["slug"])
    organization.save(update_fields=[*changed, "updated_at"])
    audit_record(
        actor=audit_actor(actor),
        action="organization.settings_updated",
        organization=organization,
        target=organization,
        metadata={"changed": changed},
    )
    return organization
