"""Forms for the licensing core pages. Validation of business rules stays in the services."""

from __future__ import annotations

from decimal import Decimal
from functools import cached_property

from django import forms

from .models import BulkJob, Price, TenantSku
from .selectors.directory_search import INACTIVITY_DAYS, SORTS
from .selectors.usage import license_choice_label, license_choices, service_plan_choices


class TenantCreateForm(forms.Form):
    domain_prefix = forms.CharField(
        label="Microsoft domain name", max_length=27,
        help_text="Your tenant's address will be <name>.onmicrosoft.com. Letters and digits only.",
    )
    company_name = forms.CharField(label="Company name", max_length=200)
    address_line1 = forms.CharField(label="Street address", max_length=200)
    city = forms.CharField(max_length=100)
    state = forms.CharField(label="State or region", max_length=100, required=False)
    postal_code = forms.CharField(label="Postal code", max_length=20)
    country = forms.CharField(label="Country (two letters)", max_length=2, min_length=2)
    first_name = forms.CharField(label="Primary contact first name", max_length=100)
    last_name = forms.CharField(label="Primary contact last name", max_length=100)
    email = forms.EmailField(label="Primary contact email")
    phone = forms.CharField(label="Primary contact phone", max_length=30)

    def clean_country(self):
        return self.cleaned_data["country"].upper()

    def address(self) -> dict:
        data = self.cleaned_data
        return {k: data[k] for k in ("address_line1", "city", "state", "postal_code", "country")}

    def contact(self) -> dict:
        data = self.cleaned_data
        return {k: data[k] for k in ("first_name", "last_name", "email", "phone")}


class TenantLinkForm(forms.Form):
    tenant_id = forms.CharField(
        label="Microsoft tenant ID", max_length=36,
        help_text="In the Microsoft Entra admin center: Identity > Overview > Tenant ID.",
    )
    company_name = forms.CharField(label="Company name", max_length=200)


class AgreementForm(forms.Form):
    first_name = forms.CharField(max_length=100)
    last_name = forms.CharField(max_length=100)
    email = forms.EmailField()
    phone = forms.CharField(max_length=30, required=False)
    accept = forms.BooleanField(label="I accept the Microsoft Customer Agreement on behalf of my organisation")


class CatalogFilterForm(forms.Form):
    q = forms.CharField(label="Search", required=False)
    family = forms.ChoiceField(required=False)
    term = forms.ChoiceField(choices=[("", "Any term"), *Price.Term.choices], required=False)
    billing = forms.ChoiceField(label="Billing frequency",
                                choices=[("", "Any frequency"), *Price.BillingCycle.choices], required=False)

    def __init__(self, *args, families=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["family"].choices = [("", "All families"), *[(f, f) for f in families]]


class PurchaseForm(forms.Form):
    offer = forms.ModelChoiceField(queryset=Price.objects.none(), label="Term and billing frequency",
                                   empty_label=None)
    quantity = forms.IntegerField(min_value=1, initial=1, label="Seats")
    auto_renew = forms.BooleanField(required=False, initial=True, label="Renew automatically at the end of the term")

    def __init__(self, *args, offers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["offer"].queryset = Price.objects.filter(pk__in=[o.pk for o in offers])
        self.fields["offer"].label_from_instance = lambda p: f"{p.get_term_duration_display()} term, billed " \
                                                             f"{p.get_billing_cycle_display().lower()}"


# The subscription page holds both forms below. Each has its own prefix, so their fields' names and
# ids differ ("seats-quantity" and "renewal-quantity"): one id per page, one label per input.
class QuantityForm(forms.Form):
    prefix = "seats"

    quantity = forms.IntegerField(min_value=1, label="New number of seats")
    confirm_wipe_scheduled = forms.BooleanField(
        required=False, label="I understand this deletes the changes scheduled for the next term"
    )


class ScheduleForm(forms.Form):
    prefix = "renewal"

    quantity = forms.IntegerField(min_value=1, label="Seats at renewal")
    term_duration = forms.ChoiceField(choices=Price.Term.choices, label="Term at renewal")
    billing_cycle = forms.ChoiceField(choices=Price.BillingCycle.choices, label="Billing frequency at renewal")


class LicensingSettingsForm(forms.Form):
    """Every licensing setting; the page drops the approval fields for members who may not change them."""

    approval_threshold = forms.DecimalField(
        required=False, min_value=Decimal("0"), max_digits=12, decimal_places=2,
        label="Owner approval above (per billing period)",
        help_text="Orders above this total need an owner's approval. Leave empty for no approval.",
    )
    currency = forms.CharField(
        min_length=3, max_length=3, label="Currency of the approval amount",
        help_text="A three-letter code such as USD. Orders priced in another currency always need approval.",
    )
    inactive_days = forms.IntegerField(min_value=1, max_value=365, label="Inactive after (days)")
    reminder_offsets = forms.CharField(label="Renewal reminders (days before)", help_text="For example: 30, 7, 1")
    email_notifications = forms.BooleanField(required=False, label="Also send notifications by e-mail")

    def __init__(self, *args, approval: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if not approval:
            del self.fields["approval_threshold"], self.fields["currency"]

    def clean_currency(self):
        return self.cleaned_data["currency"].strip().upper()

    def clean_reminder_offsets(self):
        try:
            return [int(p) for p in self.cleaned_data["reminder_offsets"].replace(" ", "").split(",") if p]
        except ValueError:
            raise forms.ValidationError("Use whole numbers separated by commas.") from None

    @classmethod
    def initial_from(cls, settings) -> dict:
        return {
            "approval_threshold": settings.approval_threshold, "currency": settings.currency,
            "inactive_days": settings.inactive_days, "email_notifications": settings.email_notifications,
            "reminder_offsets": ", ".join(map(str, settings.reminder_offsets)),
        }


class DirectoryFilterForm(forms.Form):
    """Search and filters of the directory users page (licensing.selectors.directory_search)."""

    q = forms.CharField(required=False, label="Search", max_length=200,
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Part of a name, UPN or e-mail",
                                                      "autocomplete": "off"}))
    sku = forms.ModelChoiceField(queryset=TenantSku.objects.none(), required=False, label="License",
                                 empty_label="Any license")
    status = forms.ChoiceField(required=False, label="Show", choices=[
        ("", "Everyone"), ("licensed", "With a license"), ("unlicensed", "Without a license"),
        ("no_location", "Missing usage location"), ("failed", "Failed"),
    ])
    department = forms.ChoiceField(required=False, label="Department")
    location = forms.ChoiceField(required=False, label="Usage location")
    inactive_days = forms.TypedChoiceField(
        required=False, label="Signed in", coerce=int, empty_value=None,
        choices=[("", "Any time")] + [(str(d), f"Not in {d} days") for d in INACTIVITY_DAYS])
    sort = forms.ChoiceField(required=False, widget=forms.HiddenInput,
                             choices=[("", "")] + [(k, k) for k in SORTS] + [(f"-{k}", k) for k in SORTS])

    def __init__(self, *args, organization, facets: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.fields["sku"].queryset = TenantSku.objects.for_org(organization)  # validates a chosen license
        # The options, read when first shown, from the same list as the page's bulk bar.
        self.fields["sku"].choices = lambda: [("", self.fields["sku"].empty_label)] + [
            (str(pool.pk), pool.label) for pool in self.license_pools]
        facets = facets or {"departments": [], "locations": []}
        self.fields["department"].choices = [("", "Any department")] + [(d, d) for d in facets["departments"]]
        self.fields["location"].choices = [("", "Anywhere"), ("-", "Missing")] + [
            (c, c) for c in facets["locations"]]


    @cached_property
    def license_pools(self) -> list[TenantSku]:
        """The organisation's licenses, one query however often they are listed."""
        return list(TenantSku.objects.for_org(self.organization))


class LicenseChoiceField(forms.ModelChoiceField):
    """A license picker whose options say how many seats are free: "Business Premium, 3 of 25 free"."""

    def label_from_instance(self, obj):
        return license_choice_label(obj)


class AssignForm(forms.Form):
    """Pick a license, then which of *its* services to turn off (by their admin-center names).

    The services offered are the chosen license's: the one posted, else ``?sku=`` (the page re-reads it
    through htmx when the picker changes), else the first license."""

    sku = LicenseChoiceField(queryset=TenantSku.objects.none(), label="License")
    disabled_plans = forms.MultipleChoiceField(required=False, label="Turn off these services",
                                               widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, organization, chosen=None, plans_url: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        pools = list(license_choices(organization))
        self.fields["sku"].queryset = license_choices(organization)
        self.fields["sku"].choices = [("", "Choose a license")] + [
            (str(pool.pk), license_choice_label(pool)) for pool in pools]
        wanted = str((self.data.get(self.add_prefix("sku")) if self.is_bound else None) or chosen or "")
        pool = next((p for p in pools if str(p.pk) == wanted), pools[0] if pools else None)
        if pool is not None and not self.is_bound:
            self.initial.setdefault("sku", pool.pk)
        self.fields["disabled_plans"].choices = service_plan_choices(pool) if pool is not None else []
        if plans_url:
            self.fields["sku"].widget.attrs.update({
                "hx-get": plans_url, "hx-trigger": "change", "hx-target": "#id_disabled_plans",
                "hx-select": "#id_disabled_plans", "hx-swap": "outerHTML",
            })


class BulkUploadForm(forms.Form):
    sku = forms.ModelChoiceField(queryset=TenantSku.objects.none(), label="License")
    action = forms.ChoiceField(choices=BulkJob.Action.choices, initial=BulkJob.Action.ASSIGN)
    file = forms.FileField(label="CSV file", help_text=(
        "One user per row: their user principal name or e-mail address in the first column (other columns are "
        "ignored). A header row such as \"User principal name\" is optional and is not counted. Up to 50,000 "
        "rows."))

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sku"].queryset = TenantSku.objects.for_org(organization)


class ReductionProposeForm(forms.Form):
    """Seats to drop at the next renewal; the service checks the range against the subscription."""

    reduce_by = forms.IntegerField(
        label="Seats to drop at renewal",
        min_value=1,
        max_value=1_000_000,
        error_messages={
            "required": "Enter how many seats to drop at renewal.",
            "invalid": "Enter how many seats to drop at renewal as a whole number, for example 3.",
            "min_value": "Enter how many seats to drop at renewal: at least 1.",
            "max_value": "Enter how many seats to drop at renewal: fewer than the subscription has.",
        },
    )
