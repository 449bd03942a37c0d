"""Passkeys (WebAuthn) as an additional second factor, through django-otp-webauthn.

A passkey never replaces the password: passwordless sign-in is off in settings, and these views
only serve a signed-in person. The plugin does the WebAuthn ceremonies and stores the credential
(a django-otp device); this module adds our rules around it: adding one needs a recent second-factor
check like any other device change, and using one verifies the session exactly as a TOTP code does.
"""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.middleware.csrf import get_token
from django.urls import reverse
from django.views.i18n import JavaScriptCatalog
from django_otp_webauthn import exceptions as webauthn_errors
from django_otp_webauthn import views as webauthn_views
from django_otp_webauthn.helpers import WebAuthnHelper

from accounts.models import SignInEvent
from core.audit import Actor, audit_record
from core.tenancy import person_context

from . import signin
from .reauth import has_recent_mfa

PASSKEY_NAME = "Passkey"
FACTOR = SignInEvent.Factor.WEBAUTHN


def passkey_script_config(request) -> dict:
    """What the plugin's scripts read from the page's ``otp_webauthn_config`` JSON block (never executed)."""
    return {
        "csrfToken": get_token(request),
        "beginRegistrationUrl": reverse("accounts:passkey_register_begin"),
        "completeRegistrationUrl": reverse("accounts:passkey_register_complete"),
        "beginAuthenticationUrl": reverse("accounts:passkey_verify_begin"),
        "completeAuthenticationUrl": reverse("accounts:passkey_verify_complete"),
        "autocompleteLoginFieldSelector": None,
        "nextFieldSelector": "input[name='next']",
    }


class PasskeyHelper(WebAuthnHelper):
    """The plugin's ceremonies, with a readable device name and the audit event of every added passkey."""

    def create_credential(self, user, response, parsed_credential, original_data):
        device = super().create_credential(user, response, parsed_credential, original_data)
        device.name = PASSKEY_NAME
        return device

    @transaction.atomic
    def register_complete(self, user, state, data):
        device = super().register_complete(user=user, state=state, data=data)
        audit_record(actor=Actor.user(user), action="mfa.passkey_added", target=device)
        return device


class RecentMFARequired(webauthn_errors.OTPWebAuthnApiError):
    status_code = 403
    default_code = "recent_mfa_required"
    default_detail = "Confirm it's you first: reload the page and enter a code from your authenticator app."


class _RegistrationRules:
    def check_can_register(self):
        if not has_recent_mfa(self.request):
            raise RecentMFARequired()


class _OwnPasskeys:
    """The plugin's ceremonies read and write the signed-in person's passkeys, user handle and attestations,
    which have row-level security per person (decision 035): each view runs in that person's context.
    Passwordless sign-in is off, so no ceremony here looks a passkey up before the person is known; a
    credential of anyone else is simply not found."""

    def dispatch(self, request, *args, **kwargs):
        user = getattr(request, "user", None)
        with person_context(user if user is not None and user.is_authenticated else None):
            return super().dispatch(request, *args, **kwargs)


class PasskeyRegisterBeginView(_OwnPasskeys, _RegistrationRules, webauthn_views.BeginCredentialRegistrationView):
    pass


class PasskeyRegisterCompleteView(
    _OwnPasskeys, _RegistrationRules, webauthn_views.CompleteCredentialRegistrationView
):
    def post(self, *args, **kwargs):
        response = super().post(*args, **kwargs)
        messages.success(self.request, "Passkey added. You can use it instead of a code when you sign in.")
        return response


class PasskeyVerifyBeginView(_OwnPasskeys, webauthn_views.BeginCredentialAuthenticationView):
    pass


class PasskeyVerifyCompleteView(_OwnPasskeys, webauthn_views.CompleteCredentialAuthenticationView):
    """The passkey answer on the verification page: on success the same bookkeeping as a TOTP code."""

    def complete_auth(self, device):
        signin.second_factor_accept(request=self.request, device=device, factor=FACTOR)

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if self.request.user.is_authenticated:
            signin.sign_in_event_record(
                request=self.request,
                user=self.request.user,
                succeeded=False,
                factor=FACTOR,
                reason=SignInEvent.Reason.BAD_CODE,
            )
        return response

    def dispatch(self, request, *args, **kwargs):
        return signin.set_device_cookie(request, super().dispatch(request, *args, **kwargs))


# The plugin's scripts call gettext(); this serves its (English) catalogue from our own origin.
passkey_script_catalog = JavaScriptCatalog.as_view(packages=["django_otp_webauthn"])
