"""Forms of the directory user actions. Validation of the rules stays in the services
(``licensing.services.directory.users``); these only shape the input."""

from __future__ import annotations

from django import forms

from .services.directory.offboard import Mailbox


class CreateUserForm(forms.Form):
    display_name = forms.CharField(label="Display name", max_length=256)
    user_name = forms.CharField(
        label="User name", max_length=64,
        help_text="The part before the @ of the sign-in name; also the mail alias. For example ada.lovelace.",
    )
    domain = forms.ChoiceField(label="Domain")
    usage_location = forms.CharField(
        label="Usage location", max_length=2, required=False,
        help_text="Two-letter country code such as US, GB or DE. Microsoft assigns licenses only with one.",
    )
    job_title = forms.CharField(label="Job title", max_length=128, required=False)
    force_change_password = forms.BooleanField(
        label="Require a new password at first sign-in", required=False, initial=True,
    )

    def __init__(self, *args, domains: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["domain"].choices = [(d, f"@{d}") for d in domains]
        self.fields["user_name"].widget.attrs.update({"autocomplete": "off", "spellcheck": "false"})


class ResetPasswordForm(forms.Form):
    force_change_password = forms.BooleanField(
        label="Require a new password at next sign-in", required=False, initial=True,
    )


class OffboardForm(forms.Form):
    mailbox = forms.ChoiceField(
        label="The user's mailbox", choices=Mailbox.choices, widget=forms.RadioSelect,
        help_text="Sign-in is blocked and the user is signed out everywhere in every case.",
    )
