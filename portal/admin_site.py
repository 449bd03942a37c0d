"""The staff admin site class, apart from portal/admin.py: the lazy default site imports this
module while admin modules register models, so it must not itself register anything."""

from django_otp.admin import OTPAdminSite


class PortalAdminSite(OTPAdminSite):
    """Nothing but the OTP sign-in is shown until staff verify a second factor."""

    site_header = "Cloud Licenses Portal staff"
    site_title = "Portal staff"
    index_title = "Operations"

    def __init__(self, name="admin"):
        # django-otp names its site "otpadmin"; keep "admin" so reverse("admin:...") works everywhere.
        super().__init__(name=name)
