"""The baseline for bench_staff_admin: the same provisioning-operations admin on a second admin site,
without the staff-grant checks and audit writes, reading every organisation's rows as the admin did
before grants (decision 021), on an admin site with the same models as the portal's. Mounted only in the
benchmark URLs."""

from django.contrib import admin
from django.db import transaction

from licensing.admin import ProvisioningOperationAdmin
from licensing.models import ProvisioningOperation
from portal.admin_site import PortalAdminSite

BENCH_ORGANIZATION = "bench-staff-admin"


class UngrantedProvisioningOperationAdmin(ProvisioningOperationAdmin):
    grant_checks = False

    def get_queryset(self, request):
        # The bench's organisation only: the same rows as the granted page, without a tenant context or a
        # grant. Every organisation's would also list what the benchmarks before it in `make bench` left.
        return self.model.unscoped_objects.filter(organization__slug=BENCH_ORGANIZATION)

    def changelist_view(self, request, extra_context=None):
        # Rendered inside the request's transaction like the granted page (its tenant context renders
        # inside it, without a savepoint), so the ratio is the grant check and the audit write, not
        # per-statement transactions for the template's queries.
        with transaction.atomic(savepoint=False):
            response = super().changelist_view(request, extra_context)
            response.render()
        return response


site = PortalAdminSite(name="benchadmin")
# Every model the portal's admin site has, so both pages carry the same navigation sidebar (about a
# seventh of the page): only the provisioning operations admin differs.
for model, model_admin in admin.site._registry.items():
    if model is not ProvisioningOperation:
        site.register(model, type(model_admin))
site.register(ProvisioningOperation, UngrantedProvisioningOperationAdmin)
