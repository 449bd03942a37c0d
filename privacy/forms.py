"""Forms for privacy requests (input parsing only; the services decide)."""

from __future__ import annotations

from datetime import UTC, datetime, time

from django import forms

from privacy.models import PrivacyRequest
from privacy.services.authorizations import authorization_document_check

KIND_HELP = (
    "Access: what we hold about you since 1 January 2022. Portability: your organisation's license and "
    "account history as JSON and CSV. Correction: tell us what is wrong below. Deletion: we keep only what "
    "the law requires and tell you what and why."
)


class PortalRequestForm(forms.Form):
    kind = forms.ChoiceField(label="What would you like?", choices=PrivacyRequest.Kind.choices, help_text=KIND_HELP)
    region = forms.ChoiceField(
        label="Where do you live?",
        choices=PrivacyRequest.Region.choices,
        help_text="It decides which law's deadlines apply; when unsure, we apply the strictest.",
    )
    organization = forms.ChoiceField(
        label="Organisation", required=False, help_text="For portability: whose license and account history to export."
    )
    details = forms.CharField(
        label="Details",
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="For a correction: which information is wrong and what it should be.",
    )

    def __init__(self, *args, organizations=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.organizations = {str(o.pk): o for o in organizations}
        self.fields["organization"].choices = [("", "None in particular")] + [
            (pk, o.display_name) for pk, o in self.organizations.items()
        ]

    def clean(self):
        cleaned = super().clean()
        cleaned["organization"] = self.organizations.get(cleaned.get("organization") or "")
        if cleaned.get("kind") == PrivacyRequest.Kind.PORTABILITY and cleaned["organization"] is None:
            self.add_error("organization", "Choose the organisation whose history to export.")
        if cleaned.get("kind") == PrivacyRequest.Kind.CORRECTION and not (cleaned.get("details") or "").strip():
            self.add_error("details", "Say which information is wrong and what it should be.")
        return cleaned


class PublicRequestForm(forms.Form):
    name = forms.CharField(label="Your name", max_length=150)
    email = forms.EmailField(
        label="Your email address", max_length=254, help_text="We send a code to this address to confirm it is yours."
    )
    kind = forms.ChoiceField(label="What would you like?", choices=PrivacyRequest.Kind.choices, help_text=KIND_HELP)
    region = forms.ChoiceField(label="Where do you live?", choices=PrivacyRequest.Region.choices)
    details = forms.CharField(
        label="Details",
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Anything that helps us find your information, for example the company "
        "whose Microsoft directory you are in.",
    )
    on_behalf = forms.BooleanField(label="I am making this request on someone else's behalf", required=False)
    agent_name = forms.CharField(
        label="Name of the person you act for",
        max_length=150,
        required=False,
        help_text="We need their signed authorisation before acting.",
    )
    subject_email = forms.EmailField(
        label="Email address of the person you act for",
        max_length=254,
        required=False,
        help_text="We look for their information under this address, not yours. Codes and answers still go "
        "to your address.",
    )
    document = forms.FileField(
        label="Their signed authorisation (if you act for someone)",
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": ".pdf,.png,.jpg,.jpeg,application/pdf,image/png,image/jpeg"}),
        help_text="A PDF, PNG or JPEG of at most 5 MB; or email it to our Data Privacy Officer later. "
        "If the form shows an error, attach it again.",
    )

    def clean_document(self):
        document = self.cleaned_data.get("document")
        if document is not None:
            # The service's own check, run here too so a refused file is not counted against the
            # per-address limit; the service checks again before keeping it.
            try:
                authorization_document_check(document)
            except forms.ValidationError as refused:
                raise forms.ValidationError(refused.message_dict["document"]) from refused
        return document

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("document") is not None and not cleaned.get("on_behalf"):
            self.add_error("document", "Attach an authorisation only when you act on someone else's behalf.")
        return cleaned


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code from the email",
        max_length=8,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}),
    )


class StaffRequestForm(PublicRequestForm):
    document = None  # the officer files an agent's document on the request's desk, with a note
    received_on = forms.DateField(
        label="Date received",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The day the email or letter arrived: the clock starts then.",
    )

    def clean_received_on(self):
        value = self.cleaned_data["received_on"]
        return datetime.combine(value, time(12, 0), tzinfo=UTC)


class ReasonForm(forms.Form):
    reason = forms.CharField(label="Reason", max_length=4000, widget=forms.Textarea(attrs={"rows": 3}))


class NoteForm(forms.Form):
    note = forms.CharField(label="Note", max_length=4000, widget=forms.Textarea(attrs={"rows": 3}))


class AuthorizationForm(NoteForm):
    document = forms.FileField(
        label="Authorisation document",
        help_text="The signed authorisation the agent sent: a PDF, PNG or JPEG of at most 5 MB.",
    )

    def __init__(self, *args, document_on_file: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if document_on_file:
            self.fields["document"].required = False
            self.fields["document"].help_text = (
                "The agent uploaded one with the request: record your check of it in the note, or attach "
                "another (a PDF, PNG or JPEG of at most 5 MB).")


class CorrectionForm(forms.Form):
    FIELDS = [
        ("display_name", "Display name"),
        ("job_title", "Job title"),
        ("mail", "Email address"),
        ("user_principal_name", "Sign-in name (UPN)"),
        ("usage_location", "Usage location"),
    ]
    person = forms.CharField(label="Directory user's email or sign-in name", max_length=254)
    field = forms.ChoiceField(label="Field", choices=FIELDS)
    new_value = forms.CharField(label="Correct value", max_length=254)
    reason = forms.CharField(label="Reason", max_length=300, widget=forms.Textarea(attrs={"rows": 2}))
    restrict = forms.BooleanField(label="Disputed: restrict its use until resolved (GDPR Art. 18)", required=False)


class ApproveForm(forms.Form):
    note = forms.CharField(label="Note (optional)", required=False, max_length=4000,
                           widget=forms.Textarea(attrs={"rows": 2}))


class AssignForm(forms.Form):
    officer = forms.ChoiceField(label="Assign to")

    def __init__(self, *args, officers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.officers = {str(o.pk): o for o in officers}
        self.fields["officer"].choices = [(pk, o.full_name or o.email) for pk, o in self.officers.items()]

    def clean_officer(self):
        return self.officers[self.cleaned_data["officer"]]
