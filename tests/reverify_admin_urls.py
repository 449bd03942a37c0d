"""The portal's URLs plus a staff admin site whose grant-scoped admin allows delete (settings.ROOT_URLCONF).

No admin of the portal allows delete today, so the re-verification a delete needs
(``accounts.admin_grants.GrantScopedAdmin.delete_view`` and its ``delete_selected`` action) is tested here.
"""

from django.contrib import admin
from django.urls import path

from accounts.admin_grants import GrantScopedAdmin
from licensing.models import ProvisioningOperation
from portal.urls import handler400, handler403, handler404, handler500, urlpatterns  # noqa: F401


class DeletableOperationAdmin(GrantScopedAdmin, admin.ModelAdmin):
    """A licensing admin that, unlike the portal's, lets a license operator delete rows."""

    grant_area = "licensing"
    actions = ["delete_selected"]


site = admin.AdminSite(name="reverify_admin")
site.register(ProvisioningOperation, DeletableOperationAdmin)

urlpatterns = [path("reverify-admin/", site.urls), *urlpatterns]
