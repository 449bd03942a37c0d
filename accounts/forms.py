"""Forms for sign-in, sign-up, MFA and account settings. They validate input; services do the work."""

from __future__ import annotations

import zoneinfo

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.core.validators import RegexValidator

from core.crypto import blind_index

from .models import EMAIL_INDEX, User
from .selectors import user_by_email

NAME_MAX = 150
ORG_NAME_MAX = 200
CODE_MAX = 32
TIME_ZONE_CHOICES = [(tz, tz.replace("_", " ")) for tz in sorted(zoneinfo.available_timezones())]

_country_validator = RegexValidator(r"^[A-Za-z]{2}$", "Use a two-letter ISO country code, for example US or DE.")


def _no_control_characters(value: str) -> None:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise forms.ValidationError("Remove line breaks and other control characters.")


class PasswordPairMixin:
    """Two password fields that must match and pass the configured validators."""

    def _clean_password_pair(self, user: User | None):
        password1 = self.cleaned_data.get("password1")
        password2 = self.cleaned_data.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", "The two passwords do not match.")
            return
        if password1:
            try:
                password_validation.validate_password(password1, user)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)


def _person_fields():
    return {
        "full_name": forms.CharField(
            label="Your full name",
            max_length=NAME_MAX,
            validators=[_no_control_characters],
            widget=forms.TextInput(attrs={"autocomplete": "name"}),
        ),
        "email": forms.EmailField(
            label="Work email", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
        ),
        "password1": forms.CharField(
            label="Password",
            strip=False,
            max_length=128,
            help_text=password_validation.password_validators_help_text_html(),
            widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        ),
        "password2": forms.CharField(
            label="Confirm password",
            strip=False,
            max_length=128,
            widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        ),
    }


class OrganizationForm(forms.Form):
    legal_name = forms.CharField(
        label="Organisation legal name",
        max_length=ORG_NAME_MAX,
        validators=[_no_control_characters],
        widget=forms.TextInput(attrs={"autocomplete": "organization"}),
    )
    business_name = forms.CharField(
        label="Trading name (optional)", max_length=ORG_NAME_MAX, required=False, validators=[_no_control_characters]
    )
    country = forms.CharField(
        label="Country",
        min_length=2,
        max_length=2,
        validators=[_country_validator],
        help_text="Two-letter ISO code, for example US, GB or DE.",
        widget=forms.TextInput(attrs={"autocomplete": "country", "class": "input-short"}),
    )
    time_zone = forms.ChoiceField(label="Time zone", choices=TIME_ZONE_CHOICES, initial="UTC")

    def clean_country(self):
        return self.cleaned_data["country"].upper()


class SignupForm(PasswordPairMixin, OrganizationForm):
    field_order = [
        "full_name",
        "email",
        "password1",
        "password2",
        "legal_name",
        "business_name",
        "country",
        "time_zone",
    ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields.update(_person_fields())
        self.order_fields(self.field_order)

    def clean(self):
        cleaned = super().clean()
        email = cleaned.get("email")
        probe = User(email=email or "", full_name=cleaned.get("full_name") or "")
        self._clean_password_pair(probe)
        return cleaned


class InvitationSignupForm(PasswordPairMixin, forms.Form):
    """A new person accepting an invitation. The email must be the invited one."""

    def __init__(self, *args, invited_email_index: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.invited_email_index = invited_email_index
        self.fields.update(_person_fields())

    def clean_email(self):
        email = self.cleaned_data["email"]
        if blind_index(EMAIL_INDEX, email) != self.invited_email_index:
            raise forms.ValidationError("Use the email address the invitation was sent to.")
        return email

    def clean(self):
        cleaned = super().clean()
        self._clean_password_pair(User(email=cleaned.get("email") or "", full_name=cleaned.get("full_name") or ""))
        return cleaned


class LoginForm(AuthenticationForm):
    """Email and password. The field is called ``username`` because django-axes counts it under that name."""

    username = forms.EmailField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        max_length=128,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    error_messages = {
        "invalid_login": "That email and password do not match an account. Check them and try again.",
        "inactive": "This account is disabled. Contact your organisation's owner.",
    }


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=CODE_MAX,
        help_text="The 6-digit code from your authenticator app, or one of your recovery codes.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autocapitalize": "none", "spellcheck": "false", "autofocus": True}
        ),
    )


class TOTPConfirmForm(forms.Form):
    code = forms.CharField(
        label="Code from your app",
        max_length=CODE_MAX,
        help_text="Enter the 6-digit code your app shows after adding the account.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )
    name = forms.CharField(
        label="Name this authenticator (optional)",
        max_length=64,
        required=False,
        validators=[_no_control_characters],
        help_text="For example “Work phone”. Helps you tell devices apart later.",
    )


class ProfileForm(forms.Form):
    full_name = forms.CharField(
        label="Full name",
        max_length=NAME_MAX,
        validators=[_no_control_characters],
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    job_title = forms.CharField(
        label="Job title",
        max_length=NAME_MAX,
        required=False,
        validators=[_no_control_characters],
        widget=forms.TextInput(attrs={"autocomplete": "organization-title"}),
    )


class EmailPasswordResetForm(PasswordResetForm):
    """Django's reset form filters on ``email``, which is encrypted; look up through the blind index.

    The response is the same whether or not the address has an account, so it reveals nothing.
    """

    email = forms.EmailField(
        label="Email", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True})
    )

    def get_users(self, email):
        user = user_by_email(email)
        if user is not None and user.is_active and user.has_usable_password():
            yield user
