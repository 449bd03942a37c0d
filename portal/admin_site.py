"""The staff admin site class, apart from portal/admin.py: the lazy default site imports this
module while admin modules register models, so it must not itself register anything."""

from django.template.response import TemplateResponse
from django.urls import path
from django_otp.admin import OTPAdminSite

from accounts import signin
from accounts.admin_signin import StaffSignInForm, staff_sign_in_complete

from .status import system_status


class PortalAdminSite(OTPAdminSite):
    """Nothing but the OTP sign-in is shown until staff verify a second factor.

    Staff sign in with the portal's own rules and records (accounts.admin_signin): every attempt
    is a SignInEvent, and a successful one is a tracked session with a recent second-factor check.
    """

    site_header = "Cloud Licenses Portal staff"
    site_title = "Portal staff"
    index_title = "Operations"
    login_form = StaffSignInForm
    login_template = "accounts/admin_login.html"

    def __init__(self, name="admin"):
        # django-otp names its site "otpadmin"; keep "admin" so reverse("admin:...") works everywhere.
        super().__init__(name=name)

    def get_urls(self):
        return [path("status/", self.admin_view(self.system_status_view), name="system_status"), *super().get_urls()]

    def system_status_view(self, request):
        """Workers, queues, the outbox backlog, periodic jobs and Microsoft reachability, for operators."""
        context = {**self.each_context(request), "title": "System status", "status": system_status()}
        return TemplateResponse(request, "admin/system_status.html", context)

    def login(self, request, extra_context=None):
        response = super().login(request, extra_context)
        if request.method != "POST":
            return response
        # Django's login view redirects only once the form is valid and the user is logged in.
        if response.status_code == 302 and request.user.is_authenticated:
            staff_sign_in_complete(request=request)
        return signin.set_device_cookie(request, response)
