from django.urls import path

from . import passkeys, views

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("signup/", views.SignupView.as_view(), name="signup"),
    path("signup/organization/", views.SignupOrganizationView.as_view(), name="signup_organization"),
    path("verify-email/sent/", views.VerifyEmailSentView.as_view(), name="verify_email_sent"),
    path("verify-email/<str:token>", views.VerifyEmailView.as_view(), name="verify_email"),
    path("mfa/enroll/", views.MFAEnrollView.as_view(), name="mfa_enroll"),
    path("mfa/verify/", views.MFAVerifyView.as_view(), name="mfa_verify"),
    path("mfa/devices/", views.MFADevicesView.as_view(), name="mfa_devices"),
    path("mfa/recovery-codes/", views.RecoveryCodesView.as_view(), name="recovery_codes"),
    path("mfa/passkeys/add/", views.PasskeyAddView.as_view(), name="passkey_add"),
    path("mfa/passkeys/register/begin/", passkeys.PasskeyRegisterBeginView.as_view(), name="passkey_register_begin"),
    path(
        "mfa/passkeys/register/complete/",
        passkeys.PasskeyRegisterCompleteView.as_view(),
        name="passkey_register_complete",
    ),
    path("mfa/passkeys/verify/begin/", passkeys.PasskeyVerifyBeginView.as_view(), name="passkey_verify_begin"),
    path("mfa/passkeys/verify/complete/", passkeys.PasskeyVerifyCompleteView.as_view(), name="passkey_verify_complete"),
    path("mfa/passkeys/jsi18n/", passkeys.passkey_script_catalog, name="passkey_jsi18n"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("reset/<uidb64>/<token>/", views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("reset/done/", views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("profile/", views.ProfileView.as_view(), name="profile"),
    path("sessions/", views.SessionsView.as_view(), name="sessions"),
    path("activity/", views.ActivityView.as_view(), name="activity"),
    path("invitations/<str:token>/", views.InvitationAcceptView.as_view(), name="invitation_accept"),
]
