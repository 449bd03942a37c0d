"""Account pages: sign-up, sign-in with the second factor, and the person's own settings.

Views stay thin: they parse input, call a service or selector and render.
"""

from __future__ import annotations

import time

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme, urlencode, urlsafe_base64_decode
from django.views import View
from django.views.generic import ListView

from accounts.models import SignInEvent
from core.pagination import ShortPageCountPaginator
from core.tenancy import person_context

from . import mfa, selectors, signin
from .forms import (
    CodeForm,
    EmailPasswordResetForm,
    InvitationSignupForm,
    LoginForm,
    OrganizationForm,
    ProfileForm,
    SignupForm,
    TOTPConfirmForm,
)
from .invitations import InvitationError, invitation_accept, invitation_from_token
from .models import User
from .passkeys import passkey_script_config
from .reauth import RecentMFARequiredMixin, has_recent_mfa, reverify_redirect
from .services import (
    EmailVerificationError,
    email_verification_send,
    email_verify,
    invitation_signup,
    organization_create,
    organization_signup,
    signup_attempt_notice_send,
    user_profile_update,
)

ENROLL_SESSION_KEY = "mfa_enroll_device"
RESEND_SESSION_KEY = "verify_email_sent_at"
# Sign-up does not sign anyone in: an address that already had an account must get the same answer.
# The session (kept server side) remembers what to show and, for a new account, whose link signs in here.
SIGNUP_EMAIL_SESSION_KEY = "signup_email"
SIGNUP_USER_SESSION_KEY = "signup_user"
RESEND_INTERVAL_SECONDS = 60


def safe_next(request, default: str | None = None) -> str:
    """The ``next`` parameter if it points inside this site; otherwise the default."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse(settings.LOGIN_REDIRECT_URL) if default is None else default


def _with_next(url: str, next_url: str) -> str:
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url


def _apply_form_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


def _after_password_step(request, user: User, next_url: str = "") -> HttpResponseRedirect:
    """Where a person goes once the password is accepted: confirm email, then enroll or verify MFA."""
    if not user.email_verified:
        return redirect("accounts:verify_email_sent")
    if mfa.has_confirmed_totp(user):
        return redirect(_with_next(reverse("accounts:mfa_verify"), next_url))
    return redirect(_with_next(reverse("accounts:mfa_enroll"), next_url))


# --- sign-in --------------------------------------------------------------------------------


class LoginView(View):
    template_name = "accounts/login.html"

    def get(self, request):
        if request.user.is_authenticated and request.user.is_verified():
            return redirect(safe_next(request))
        return self._render(request, LoginForm(request))

    def post(self, request):
        form = LoginForm(request, data=request.POST)
        email = (request.POST.get("username") or "")[:320]
        if form.is_valid():
            user = form.get_user()
            event = signin.sign_in_event_record(
                request=request, user=user, email=email, succeeded=True, factor="password"
            )
            if event.verdict.blocked:
                form.add_error(None, event.verdict.message)
                return signin.set_device_cookie(request, self._render(request, form, status=403))
            signin.user_session_start(request=request, user=user)
            next_url = safe_next(request, default="")
            return signin.set_device_cookie(request, _after_password_step(request, user, next_url))
        locked = getattr(request, "axes_locked_out", False)
        signin.sign_in_event_record(
            request=request,
            user=selectors.user_by_email(email),
            email=email,
            succeeded=False,
            factor="password",
            reason=SignInEvent.Reason.LOCKED_OUT if locked else SignInEvent.Reason.BAD_CREDENTIALS,
        )
        # When locked out, django-axes replaces this response with accounts/locked_out.html.
        return signin.set_device_cookie(request, self._render(request, form, status=400))

    def _render(self, request, form, status=200):
        next_url = safe_next(request, default="")
        return render(request, self.template_name, {"form": form, "next": next_url}, status=status)


class LogoutView(View):
    def get(self, request):
        if not request.user.is_authenticated:
            return redirect("accounts:login")
        return render(request, "accounts/logout.html")

    def post(self, request):
        signin.user_session_end(request=request)
        messages.success(request, "You are signed out.")
        return redirect("accounts:login")


# --- sign-up and email verification ---------------------------------------------------------


class SignupView(View):
    template_name = "accounts/signup.html"

    def get(self, request):
        if request.user.is_authenticated:
            return redirect(settings.LOGIN_REDIRECT_URL)
        return render(request, self.template_name, {"form": SignupForm()})

    def post(self, request):
        if request.user.is_authenticated:
            return redirect(settings.LOGIN_REDIRECT_URL)
        form = SignupForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                created = organization_signup(
                    email=data["email"],
                    password=data["password1"],
                    full_name=data["full_name"],
                    legal_name=data["legal_name"],
                    business_name=data["business_name"],
                    country=data["country"],
                    time_zone=data["time_zone"],
                )
            except ValidationError as exc:
                _apply_form_errors(form, exc)
            else:
                request.session.cycle_key()
                request.session[SIGNUP_EMAIL_SESSION_KEY] = data["email"]
                if created is None:
                    request.session.pop(SIGNUP_USER_SESSION_KEY, None)
                else:
                    request.session[SIGNUP_USER_SESSION_KEY] = str(created[0].pk)
                request.session[RESEND_SESSION_KEY] = int(time.time())
                return signin.set_device_cookie(request, redirect("accounts:verify_email_sent"))
        return render(request, self.template_name, {"form": form}, status=400)


class VerifyEmailView(View):
    def get(self, request, token):
        try:
            user = email_verify(token=token)
        except EmailVerificationError as exc:
            return render(request, "accounts/verify_email_failed.html", {"message": exc.message}, status=400)
        if not request.user.is_authenticated and request.session.get(SIGNUP_USER_SESSION_KEY) == str(user.pk):
            # The browser that chose the password now proves the inbox too: that is the password step.
            request.session.pop(SIGNUP_USER_SESSION_KEY)
            request.session.pop(SIGNUP_EMAIL_SESSION_KEY, None)
            signin.user_session_start(request=request, user=user)
        if request.user.is_authenticated and request.user.pk == user.pk:
            messages.success(request, "Your email is confirmed. Next, set up your authenticator app.")
            return _after_password_step(request, user)
        messages.success(request, "Your email is confirmed. Sign in to continue.")
        return redirect("accounts:login")


class VerifyEmailSentView(View):
    """The "check your email" page: for a signed-in person whose address is unconfirmed, and right after sign-up
    (answered the same whether or not the address already had an account)."""

    template_name = "accounts/verify_email_sent.html"

    def get(self, request):
        if request.user.is_authenticated:
            if request.user.email_verified:
                return redirect(settings.LOGIN_REDIRECT_URL)
            email = request.user.email
        else:
            email = request.session.get(SIGNUP_EMAIL_SESSION_KEY)
            if not email:
                return redirect("accounts:login")
        return render(request, self.template_name, {"email": email})

    def post(self, request):
        if request.user.is_authenticated and request.user.email_verified:
            return redirect(settings.LOGIN_REDIRECT_URL)
        if not request.user.is_authenticated and not request.session.get(SIGNUP_EMAIL_SESSION_KEY):
            return redirect("accounts:login")
        sent_at = request.session.get(RESEND_SESSION_KEY, 0)
        if time.time() - sent_at < RESEND_INTERVAL_SECONDS:
            messages.warning(request, "We sent an email less than a minute ago. Check your inbox and spam folder.")
        else:
            self._resend(request)
            request.session[RESEND_SESSION_KEY] = int(time.time())
            messages.success(request, "We sent a new confirmation email.")
        return redirect("accounts:verify_email_sent")

    @staticmethod
    def _resend(request) -> None:
        if request.user.is_authenticated:
            email_verification_send(user=request.user)
            return
        pending_pk = request.session.get(SIGNUP_USER_SESSION_KEY)
        if pending_pk:
            user = selectors.user_by_session_or_link_id(pending_pk)  # no one is signed in: as the system role
            if user is not None and user.is_active and not user.email_verified:
                email_verification_send(user=user)
            return
        existing = selectors.user_by_email(request.session[SIGNUP_EMAIL_SESSION_KEY])
        if existing is not None:
            signup_attempt_notice_send(user=existing)


# --- second factor --------------------------------------------------------------------------


def _qr_svg(device) -> str:
    return segno.make(device.config_url(), error="m").svg_inline(
        scale=5, svgclass="qr-code", title="QR code for your authenticator app", lineclass="qr-code-line"
    )


def _grouped(key: str) -> str:
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


class MFAEnrollView(LoginRequiredMixin, View):
    """Add an authenticator app. The first one needs only the password step;
    adding another needs a recent second-factor check, so a stolen password cannot add a device."""

    template_name = "accounts/mfa_enroll.html"

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            if not request.user.email_verified:
                return redirect("accounts:verify_email_sent")
            if mfa.has_confirmed_totp(request.user):
                if not request.user.is_verified():
                    return redirect(_with_next(reverse("accounts:mfa_verify"), request.get_full_path()))
                if not has_recent_mfa(request):
                    return reverify_redirect(request)
        return super().dispatch(request, *args, **kwargs)

    def _device(self, request):
        device = mfa.totp_enrollment_start(user=request.user, device_id=request.session.get(ENROLL_SESSION_KEY))
        request.session[ENROLL_SESSION_KEY] = device.pk
        return device

    def _render(self, request, form, device, status=200):
        context = {
            "form": form,
            "qr_svg": _qr_svg(device),
            "manual_key": _grouped(device.base32_key),
            "next": safe_next(request, default=""),
            "first": not mfa.has_confirmed_totp(request.user),
        }
        return render(request, self.template_name, context, status=status)

    def get(self, request):
        return self._render(request, TOTPConfirmForm(), self._device(request))

    def post(self, request):
        device = self._device(request)
        form = TOTPConfirmForm(request.POST)
        if form.is_valid():
            try:
                device, codes = mfa.totp_enrollment_confirm(
                    user=request.user,
                    device_id=device.pk,
                    token=form.cleaned_data["code"],
                    name=form.cleaned_data["name"],
                )
            except mfa.MFAError as exc:
                form.add_error("code", exc.message)
            else:
                request.session.pop(ENROLL_SESSION_KEY, None)
                # Adding another authenticator is not a sign-in: only the first enrollment is logged as one.
                signin.second_factor_accept(
                    request=request, device=device, factor="totp", record=not request.user.is_verified()
                )
                next_url = safe_next(request, default="")
                if codes:
                    return render(
                        request,
                        "accounts/recovery_codes_show.html",
                        {"codes": codes, "continue_url": next_url or reverse(settings.LOGIN_REDIRECT_URL)},
                    )
                messages.success(request, "Authenticator added.")
                return redirect(next_url or reverse("accounts:mfa_devices"))
        return self._render(request, form, device, status=400)


class MFAVerifyView(LoginRequiredMixin, View):
    """The second factor at sign-in, and re-verification before sensitive changes (reason=sensitive)."""

    template_name = "accounts/mfa_verify.html"

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            if not request.user.email_verified:
                return redirect("accounts:verify_email_sent")
            if not mfa.has_confirmed_totp(request.user) and not request.user.is_verified():
                return redirect(_with_next(reverse("accounts:mfa_enroll"), safe_next(request, default="")))
        return super().dispatch(request, *args, **kwargs)

    def _sensitive(self, request) -> bool:
        return (request.POST.get("reason") or request.GET.get("reason")) == "sensitive"

    def _render(self, request, form, status=200):
        has_passkeys = bool(selectors.passkeys_for_user(request.user))
        context = {
            "form": form,
            "next": safe_next(request, default=""),
            "sensitive": self._sensitive(request),
            "passkey_config": passkey_script_config(request) if has_passkeys else None,
        }
        return render(request, self.template_name, context, status=status)

    def get(self, request):
        if request.user.is_verified() and not self._sensitive(request):
            return redirect(safe_next(request))
        return self._render(request, CodeForm())

    def post(self, request):
        form = CodeForm(request.POST)
        if not form.is_valid():
            return self._render(request, form, status=400)
        result = mfa.mfa_verify(user=request.user, token=form.cleaned_data["code"])
        if not result.ok:
            event = signin.sign_in_event_record(
                request=request, user=request.user, succeeded=False, factor=result.factor, reason=result.failure
            )
            if event.verdict.blocked and not request.user.is_verified():
                # Someone holds the password but not the second factor: end this half-signed-in session.
                signin.user_session_end(request=request)
                messages.error(request, event.verdict.message)
                return signin.set_device_cookie(request, redirect("accounts:login"))
            form.add_error("code", result.message)
            return signin.set_device_cookie(request, self._render(request, form, status=400))
        signin.second_factor_accept(request=request, device=result.device, factor=result.factor)
        if result.factor == "recovery":
            remaining = result.device.remaining
            level = messages.WARNING if remaining <= 3 else messages.INFO
            messages.add_message(
                request,
                level,
                f"You used a recovery code; {remaining} left. If you are running low, create new codes.",
            )
        return signin.set_device_cookie(request, redirect(safe_next(request)))


class MFADevicesView(LoginRequiredMixin, View):
    template_name = "accounts/mfa_devices.html"

    def get(self, request):
        context = {
            "devices": selectors.totp_devices_for_user(request.user),
            "passkeys": selectors.passkeys_for_user(request.user),
            "recovery_remaining": selectors.recovery_codes_remaining(request.user),
        }
        return render(request, self.template_name, context)

    def post(self, request):
        if not has_recent_mfa(request):
            return reverify_redirect(request)
        if "passkey" in request.POST:
            return self._remove_passkey(request)
        try:
            device_id = int(request.POST.get("device", ""))
        except ValueError:
            messages.error(request, "Choose an authenticator to remove.")
            return redirect("accounts:mfa_devices")
        try:
            mfa.totp_device_remove(user=request.user, device_id=device_id)
        except mfa.MFAError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Authenticator removed.")
        return redirect("accounts:mfa_devices")

    def _remove_passkey(self, request):
        try:
            mfa.passkey_remove(user=request.user, device_id=int(request.POST["passkey"]))
        except ValueError:
            messages.error(request, "Choose a passkey to remove.")
        except mfa.MFAError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Passkey removed.")
        return redirect("accounts:mfa_devices")


class PasskeyAddView(RecentMFARequiredMixin, LoginRequiredMixin, View):
    """The page with the button that asks the browser to create a passkey (the plugin's script does the rest)."""

    def get(self, request):
        return render(request, "accounts/passkey_add.html", {"passkey_config": passkey_script_config(request)})


class RecoveryCodesView(LoginRequiredMixin, View):
    def get(self, request):
        return render(
            request,
            "accounts/recovery_codes.html",
            {"recovery_remaining": selectors.recovery_codes_remaining(request.user)},
        )

    def post(self, request):
        if not has_recent_mfa(request):
            return reverify_redirect(request)
        codes = mfa.recovery_codes_regenerate(user=request.user)
        return render(
            request,
            "accounts/recovery_codes_show.html",
            {"codes": codes, "continue_url": reverse("accounts:mfa_devices"), "regenerated": True},
        )


# --- password reset -------------------------------------------------------------------------


class PasswordResetView(auth_views.PasswordResetView):
    form_class = EmailPasswordResetForm
    template_name = "accounts/password_reset.html"
    email_template_name = "accounts/email/password_reset.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")

    def form_valid(self, form):
        self.extra_email_context = {"site_url": settings.SITE_URL.rstrip("/")}
        return super().form_valid(form)

    def form_invalid(self, form):
        response = super().form_invalid(form)
        response.status_code = 400
        return response


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def get_user(self, uidb64):
        """Django's lookup reads no user row before anyone is in scope (row-level security, decision 043)."""
        try:
            user_id = urlsafe_base64_decode(uidb64).decode()
        except (TypeError, ValueError, UnicodeDecodeError):
            return None
        return selectors.user_by_session_or_link_id(user_id)

    def form_valid(self, form):
        with person_context(form.user):  # the new password is written to the person's own row
            response = super().form_valid(form)
        signin.user_password_reset_complete(user=form.user)
        return response


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"


# --- account settings -----------------------------------------------------------------------


class PasswordChangeView(LoginRequiredMixin, auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:profile")

    def post(self, request, *args, **kwargs):
        if signin.password_check_locked(request.user):
            messages.error(request, "Too many wrong current passwords. Wait a few minutes, then try again.")
            return render(request, self.template_name, {"form": self.form_class(user=request.user)}, status=429)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        previous = signin.current_session_hash(self.request)
        with person_context(form.user):  # the new password is written to the person's own row
            response = super().form_valid(form)
        signin.password_check_reset(self.request.user)
        signin.user_password_change_complete(
            user=self.request.user, request=self.request, previous_session_hash=previous
        )
        messages.success(self.request, "Password changed. Other browsers were signed out.")
        return response

    def form_invalid(self, form):
        if "old_password" in form.errors:
            signin.password_check_failed(self.request.user)
        response = super().form_invalid(form)
        response.status_code = 400
        return response


class ProfileView(LoginRequiredMixin, View):
    template_name = "accounts/profile.html"

    def get(self, request):
        user = request.user
        form = ProfileForm(initial={"full_name": user.full_name, "job_title": user.job_title})
        return render(request, self.template_name, {"form": form})

    def post(self, request):
        form = ProfileForm(request.POST)
        if form.is_valid():
            try:
                user_profile_update(
                    user=request.user,
                    full_name=form.cleaned_data["full_name"],
                    job_title=form.cleaned_data["job_title"],
                )
            except ValidationError as exc:
                _apply_form_errors(form, exc)
            else:
                messages.success(request, "Profile saved.")
                return redirect("accounts:profile")
        return render(request, self.template_name, {"form": form}, status=400)


class SessionsView(LoginRequiredMixin, View):
    template_name = "accounts/sessions.html"

    def get(self, request):
        context = {
            "sessions": selectors.user_sessions_for_user(request.user),
            "current_hash": signin.current_session_hash(request),
        }
        return render(request, self.template_name, context)

    def post(self, request):
        if request.POST.get("scope") == "others":
            count = signin.user_sessions_revoke_others(user=request.user, request=request)
            messages.success(request, f"Signed out of {count} other session{'s' if count != 1 else ''}.")
            return redirect("accounts:sessions")
        target = selectors.user_session_for_user(request.user, request.POST.get("session", ""))
        if target is None:
            messages.error(request, "That session was not found; it may have ended already.")
        elif target.session_key_hash == signin.current_session_hash(request):
            messages.info(request, "That is this browser. Use “Sign out” to end it.")
        else:
            signin.user_session_revoke(user=request.user, session_id=target.pk)
            messages.success(request, "Session signed out.")
        return redirect("accounts:sessions")


class ActivityView(LoginRequiredMixin, ListView):
    template_name = "accounts/activity.html"
    context_object_name = "events"
    paginate_by = 25
    paginator_class = ShortPageCountPaginator

    def get(self, request, *args, **kwargs):
        # Row-level security shows this person's attempts only; rendered inside, as the list is read there.
        with person_context(request.user):
            response = super().get(request, *args, **kwargs)
            response.render()
        return response

    def get_queryset(self):
        return selectors.sign_in_events_for_user(self.request.user)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        flags = signin.sign_in_flags(context["events"])
        context["rows"] = [(event, flags.get(event.pk, [])) for event in context["events"]]
        return context


class SignupOrganizationView(LoginRequiredMixin, View):
    """A signed-in person without an organisation creates one and becomes its owner."""

    template_name = "accounts/signup_organization.html"

    def get(self, request):
        return render(request, self.template_name, {"form": OrganizationForm()})

    def post(self, request):
        form = OrganizationForm(request.POST)
        if form.is_valid():
            try:
                organization = organization_create(actor=request.user, **form.cleaned_data)
            except ValidationError as exc:
                _apply_form_errors(form, exc)
            else:
                request.session["current_org"] = organization.slug
                messages.success(request, f"{organization.display_name} is ready.")
                return redirect("dashboard:overview", org_slug=organization.slug)
        return render(request, self.template_name, {"form": form}, status=400)


# --- invitations ----------------------------------------------------------------------------


class InvitationAcceptView(View):
    """Shows who invited you and to what; a new person signs up here, a signed-in one accepts."""

    template_name = "accounts/invitation_accept.html"

    def _context(self, request, invitation, token, form=None):
        return {
            "invitation": invitation,
            "organization": invitation.organization,
            "token": token,
            "form": form,
            "login_url": _with_next(reverse("accounts:login"), request.get_full_path()),
        }

    def _invitation(self, request, token):
        try:
            return invitation_from_token(token), None
        except InvitationError as exc:
            return None, render(request, "accounts/invitation_invalid.html", {"message": exc.message}, status=400)

    def _needs_second_factor(self, request):
        # This page is MFA-exempt so a new invitee can sign up here, but joining an organisation
        # as an existing account is a state change: a password-only session must enroll or verify first.
        user = request.user
        if not user.is_authenticated or user.is_verified():
            return None
        step = "accounts:mfa_verify" if mfa.has_confirmed_totp(user) else "accounts:mfa_enroll"
        return redirect(_with_next(reverse(step), request.get_full_path()))

    def get(self, request, token):
        invitation, error = self._invitation(request, token)
        if error:
            return error
        gate = self._needs_second_factor(request)
        if gate:
            return gate
        form = None
        if not request.user.is_authenticated:
            form = InvitationSignupForm(invited_email_index=invitation.email_index, initial={"email": invitation.email})
        return render(request, self.template_name, self._context(request, invitation, token, form))

    def post(self, request, token):
        invitation, error = self._invitation(request, token)
        if error:
            return error
        gate = self._needs_second_factor(request)
        if gate:
            return gate
        if request.user.is_authenticated:
            try:
                membership = invitation_accept(token=token, user=request.user)
            except InvitationError as exc:
                return render(request, "accounts/invitation_invalid.html", {"message": exc.message}, status=400)
            request.session["current_org"] = membership.organization.slug
            messages.success(request, f"You joined {membership.organization.display_name}.")
            return redirect("dashboard:overview", org_slug=membership.organization.slug)
        form = InvitationSignupForm(request.POST, invited_email_index=invitation.email_index)
        if form.is_valid():
            data = form.cleaned_data
            try:
                user, membership = invitation_signup(
                    token=token, email=data["email"], password=data["password1"], full_name=data["full_name"]
                )
            except InvitationError as exc:
                return render(request, "accounts/invitation_invalid.html", {"message": exc.message}, status=400)
            except ValidationError as exc:
                _apply_form_errors(form, exc)
            else:
                signin.user_session_start(request=request, user=user)
                request.session["current_org"] = membership.organization.slug
                next_url = reverse("dashboard:overview", kwargs={"org_slug": membership.organization.slug})
                return signin.set_device_cookie(request, _after_password_step(request, user, next_url))
        return render(request, self.template_name, self._context(request, invitation, token, form), status=400)
