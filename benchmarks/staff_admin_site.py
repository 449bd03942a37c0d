"""The baseline for bench_staff_admin: the same provisioning-operations admin on a second admin site,
without the staff-grant checks and audit writes, reading every organisation's rows as the admin did
before grants (decision 021). Mounted only in the benchmark URLs."""

from licensing.admin import ProvisioningOperationAdmin
from licensing.models import ProvisioningOperation
from portal.admin_site import PortalAdminSite


class UngrantedProvisioningOperationAdmin(ProvisioningOperationAdmin):
    grant_checks = False

    def get_queryset(self, request):
        return self.model.unscoped_objects.all()


site = PortalAdminSite(name="benchadmin")
site.register(ProvisioningOperation, UngrantedProvisioningOperationAdmin)
