"""Forms for the team, API key and organisation settings pages (input parsing only; services decide)."""

from datetime import UTC, datetime, time

from django import forms
from django.utils import timezone

from accounts.roles import Role

from .forms import TIME_ZONE_CHOICES
from .org_settings import ADDRESS_KEYS


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class InvitationForm(forms.Form):
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    role = forms.ChoiceField(
        choices=Role.choices,
        initial=Role.VIEWER,
        help_text="Inviting an owner asks you to confirm your second factor first.",
    )


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses this key, for example “Nightly license report”.")
    role = forms.ChoiceField(
        choices=Role.choices, initial=Role.VIEWER, help_text="Give the key the least access it needs."
    )
    expires_on = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Optional. The key stops working at the start of this day (UTC).",
    )

    def clean_expires_on(self):
        value = self.cleaned_data.get("expires_on")
        if value is not None and value <= timezone.now().date():
            raise forms.ValidationError("Choose a date after today.")
        return value

    def expires_at(self) -> datetime | None:
        value = self.cleaned_data.get("expires_on")
        return datetime.combine(value, time.min, tzinfo=UTC) if value else None


class OrganizationSettingsForm(forms.Form):
    legal_name = forms.CharField(max_length=200)
    business_name = forms.CharField(max_length=200, required=False, help_text="Shown in the portal if set.")
    country = forms.CharField(max_length=2, min_length=2, help_text="Two-letter ISO code, for example DE or US.")
    time_zone = forms.ChoiceField(choices=TIME_ZONE_CHOICES, help_text="Dates in the portal are shown in this zone.")
    tax_id = forms.CharField(
        max_length=64, required=False, label="Tax ID", help_text="VAT number in the EU, EIN in the US."
    )
    address_line1 = forms.CharField(max_length=200, required=False, label="Billing address line 1")
    address_line2 = forms.CharField(max_length=200, required=False, label="Billing address line 2")
    address_city = forms.CharField(max_length=100, required=False, label="City")
    address_region = forms.CharField(max_length=100, required=False, label="State or region")
    address_postal_code = forms.CharField(max_length=20, required=False, label="Postal code")
    address_country = forms.CharField(max_length=2, required=False, label="Address country (ISO code)")

    @classmethod
    def initial_for(cls, organization) -> dict:
        address = organization.billing_address or {}
        return {
            "legal_name": organization.legal_name,
            "business_name": organization.business_name,
            "country": organization.country,
            "time_zone": organization.time_zone,
            "tax_id": organization.tax_id,
            **{f"address_{key}": address.get(key, "") for key in ADDRESS_KEYS},
        }

    def billing_address(self) -> dict:
        return {key: self.cleaned_data.get(f"address_{key}", "") for key in ADDRESS_KEYS}

    def changes_billing_details(self) -> bool:
        return any(name == "tax_id" or name.startswith("address_") for name in self.changed_data)
