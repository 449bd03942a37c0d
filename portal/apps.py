from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"


class PortalAdminConfig(admin_apps.AdminConfig):
    """The Django admin with the OTP-enforcing site as its default: staff need a verified device."""

    default = False  # "portal" itself resolves to PortalConfig
    default_site = "portal.admin_site.PortalAdminSite"
