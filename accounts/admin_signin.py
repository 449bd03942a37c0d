"""Staff sign-in to the admin site: password and second factor in one form, recorded like the portal's.

Every attempt leaves the same trail as a portal sign-in: a security.SignInEvent per factor
(success or failure), a tracked session, and a second-factor check that counts as recent
for sensitive actions. The code is checked by ``mfa.mfa_verify``, so authenticator codes and
recovery codes, replays and throttling behave exactly as on the portal's verify page.
"""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from accounts.models import SignInEvent

from . import mfa, signin
from .reauth import mark_mfa_verified
from .selectors import user_by_email

TOKEN_REQUIRED = "Enter the code from your authenticator app, or one of your recovery codes."


class StaffSignInForm(AdminAuthenticationForm):
    otp_token = forms.CharField(
        label="Authentication code",
        required=False,
        max_length=mfa.MAX_TOKEN_LENGTH,
        help_text="The code your authenticator app shows now, or a recovery code.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autocapitalize": "none"}),
    )

    def clean(self):
        email = (self.data.get("username") or "")[:320]
        try:
            super().clean()  # password, active and staff
        except ValidationError as exc:
            self._record_password_failure(email, exc)
            raise
        user = self.get_user()
        event = signin.sign_in_event_record(
            request=self.request, user=user, email=email, succeeded=True, factor="password"
        )
        if event.verdict.blocked:
            raise ValidationError(event.verdict.message, code="sign_in_blocked")
        token = self.cleaned_data.get("otp_token") or ""
        if not token.strip():
            raise ValidationError(TOKEN_REQUIRED, code="token_required")
        result = mfa.mfa_verify(user=user, token=token)
        event = signin.sign_in_event_record(
            request=self.request, user=user, succeeded=result.ok, factor=result.factor, reason=result.failure
        )
        if not result.ok:
            if event.verdict.blocked:
                raise ValidationError(event.verdict.message, code="sign_in_blocked")
            raise ValidationError(result.message, code=result.failure)
        # django-otp's user_logged_in receiver stores this device in the session: the user is verified.
        user.otp_device = result.device
        return self.cleaned_data

    def _record_password_failure(self, email: str, error: ValidationError) -> None:
        if getattr(self.request, "axes_locked_out", False):
            reason = SignInEvent.Reason.LOCKED_OUT
        elif any(getattr(e, "code", None) == "inactive" for e in error.error_list):
            reason = SignInEvent.Reason.INACTIVE
        else:
            reason = SignInEvent.Reason.BAD_CREDENTIALS  # includes a right password on a non-staff account
        user = self.user_cache or user_by_email(email)
        signin.sign_in_event_record(
            request=self.request, user=user, email=email, succeeded=False, factor="password", reason=reason
        )


def staff_sign_in_complete(*, request) -> None:
    """The admin's login view has signed the user in with both factors: track the session, and count
    the second factor as a recent check. After Django's login, which may have replaced the session."""
    signin.user_session_track(request=request, user=request.user)
    mark_mfa_verified(request)
