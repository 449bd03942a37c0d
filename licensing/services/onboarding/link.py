"""Linking an existing tenant through a GDAP relationship the customer approves in Microsoft's admin
center, and refreshing the relationship's state (which carries over to the tenant link).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import TENANT_ID_INDEX, MicrosoftTenant
from core.audit import Actor, audit_record
from core.crypto import blind_index
from core.tenancy import unscoped_no_tenant
from licensing.microsoft.client import default_client
from licensing.microsoft.errors import MicrosoftError, NotFound
from licensing.microsoft.resources import parse_datetime
from licensing.models import GdapRelationship, ProvisioningOperation, TenantOnboarding
from licensing.provisioning import operation_enqueue, register_operation

from .consent import enqueue_consent
from .tenant import OnboardingError, require_unlinked, tenant_row

# Least-privilege roles the portal asks for (Entra role template ids, reference §4).
GDAP_ROLES = {
    "88d8e3e3-8f55-4a1e-953a-9b9898b8876b": "Directory Readers",
    "4d6ac14f-3453-41d0-bef9-a3e0c569773a": "License Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
}
GDAP_APPROVAL_URL = "https://admin.microsoft.com/AdminPortal/Home#/partners/invitation/granularAdminRelationships/{id}"
GDAP_EXPIRING_DAYS = 30

GDAP_STATUS_MAP = {
    "created": GdapRelationship.Status.REQUESTING,
    "approvalpending": GdapRelationship.Status.APPROVAL_PENDING,
    "approved": GdapRelationship.Status.APPROVAL_PENDING,
    "activating": GdapRelationship.Status.APPROVAL_PENDING,
    "active": GdapRelationship.Status.ACTIVE,
    "expiring": GdapRelationship.Status.EXPIRING,
    "expired": GdapRelationship.Status.EXPIRED,
    "terminationrequested": GdapRelationship.Status.TERMINATED,
    "terminating": GdapRelationship.Status.TERMINATED,
    "terminated": GdapRelationship.Status.TERMINATED,
}


@transaction.atomic
def tenant_link_request(*, organization, actor: Actor, user, tenant_id: str, company_name: str) -> GdapRelationship:
    """Ask for a GDAP relationship with an existing tenant; the customer approves it in Microsoft's admin center."""
    try:
        tenant_uuid = uuid.UUID(str(tenant_id).strip())
    except ValueError:
        raise OnboardingError("Enter the tenant ID as shown in the Microsoft Entra admin center (a GUID).",
                              code="invalid_tenant_id") from None
    tenant = tenant_row(organization)
    require_unlinked(tenant)
    with unscoped_no_tenant():  # other organisations' rows: the system role (docs/decisions/025)
        taken = (MicrosoftTenant.unscoped_objects.filter(tenant_id_index=blind_index(TENANT_ID_INDEX, str(tenant_uuid)))
                 .exclude(pk=tenant.pk).exists())
    if taken:
        # Auth-style lookup across organisations: a tenant can be linked once; say so without naming the holder.
        raise OnboardingError("This tenant is already linked to another organisation.", code="tenant_taken")
    TenantOnboarding.objects.for_org(organization).filter(status=TenantOnboarding.Status.FAILED).delete()
    tenant.tenant_id = tenant_uuid
    tenant.partner_customer_id = str(tenant_uuid)
    tenant.relationship_status = MicrosoftTenant.RelationshipStatus.PENDING
    tenant.full_clean()
    tenant.save()
    onboarding = TenantOnboarding(
        organization=organization, microsoft_tenant=tenant, mode=TenantOnboarding.Mode.LINK,
        status=TenantOnboarding.Status.WAITING_FOR_CUSTOMER, domain=str(tenant_uuid),
        company_name=company_name.strip(), requested_by=user,
    )
    onboarding.full_clean()
    onboarding.save()
    relationship = GdapRelationship(
        organization=organization, microsoft_tenant=tenant,
        display_name=f"{organization.slug[:30]}-{uuid.uuid4().hex[:8]}",
        roles=[{"id": k, "name": v} for k, v in GDAP_ROLES.items()],
        auto_extend="P180D",
    )
    relationship.full_clean()
    relationship.save()
    relationship.operation = operation_enqueue(
        organization=organization, kind="gdap.request", actor=actor, target=relationship,
        payload={"relationship_id": str(relationship.pk), "company_name": onboarding.company_name},
    )
    relationship.save(update_fields=["operation", "updated_at"])
    onboarding.operation = relationship.operation
    onboarding.save(update_fields=["operation", "updated_at"])
    audit_record(actor=actor, action="tenant.link_requested", organization=organization, target=relationship)
    return relationship


@register_operation("gdap.request", on_failure=lambda op: _gdap_failed(op))
def _run_gdap_request(operation: ProvisioningOperation) -> dict:
    relationship = GdapRelationship.objects.select_related("microsoft_tenant").get(
        pk=operation.payload["relationship_id"]
    )
    graph = default_client().graph_as_admin_agent
    if not relationship.ms_relationship_id:
        remote = graph.create_gdap_relationship(
            organization=relationship.organization, request_id=str(operation.ms_request_id),
            display_name=relationship.display_name,
            customer_tenant_id=str(relationship.microsoft_tenant.tenant_id),
            customer_display_name=operation.payload.get("company_name", ""),
            role_ids=[r["id"] for r in relationship.roles], duration=relationship.duration,
            auto_extend_duration=relationship.auto_extend,
        )
        relationship.ms_relationship_id = remote.id
        operation.checkpoint["ms_relationship_id"] = remote.id
    if not operation.checkpoint.get("locked"):
        graph.lock_gdap_for_approval(relationship_id=relationship.ms_relationship_id,
                                     request_id=f"{operation.ms_request_id}")
        operation.checkpoint["locked"] = True
    relationship.status = GdapRelationship.Status.APPROVAL_PENDING
    relationship.approval_url = GDAP_APPROVAL_URL.format(id=relationship.ms_relationship_id)
    relationship.last_refreshed_at = timezone.now()
    relationship.save()
    return {"ms_relationship_id": relationship.ms_relationship_id}


def _gdap_failed(operation: ProvisioningOperation) -> None:
    relationship = GdapRelationship.objects.filter(pk=operation.payload.get("relationship_id")).first()
    if relationship is None:
        return
    relationship.status = GdapRelationship.Status.FAILED
    relationship.save(update_fields=["status", "updated_at"])
    TenantOnboarding.objects.filter(microsoft_tenant=relationship.microsoft_tenant).update(
        status=TenantOnboarding.Status.FAILED, failure_reason=(operation.failure_reason or "")[:300]
    )
    tenant = relationship.microsoft_tenant
    tenant.relationship_status = MicrosoftTenant.RelationshipStatus.NOT_LINKED
    tenant.save(update_fields=["relationship_status", "updated_at"])


def gdap_status_for(ms_status: str, ends_at, now) -> str:
    status = GDAP_STATUS_MAP.get((ms_status or "").lower().replace(" ", ""), GdapRelationship.Status.REQUESTING)
    if status == GdapRelationship.Status.ACTIVE and ends_at and ends_at - now <= timedelta(days=GDAP_EXPIRING_DAYS):
        return GdapRelationship.Status.EXPIRING
    if status in (GdapRelationship.Status.ACTIVE, GdapRelationship.Status.EXPIRING) and ends_at and ends_at <= now:
        return GdapRelationship.Status.EXPIRED
    return status


TENANT_STATUS_FOR_GDAP = {
    GdapRelationship.Status.ACTIVE: MicrosoftTenant.RelationshipStatus.ACTIVE,
    GdapRelationship.Status.EXPIRING: MicrosoftTenant.RelationshipStatus.EXPIRING,
    GdapRelationship.Status.EXPIRED: MicrosoftTenant.RelationshipStatus.EXPIRED,
    GdapRelationship.Status.TERMINATED: MicrosoftTenant.RelationshipStatus.EXPIRED,
}


@transaction.atomic
def gdap_refresh(*, relationship: GdapRelationship) -> GdapRelationship:
    """Read the relationship's state from Microsoft and carry it to the tenant link (a read, run by a task)."""
    if not relationship.ms_relationship_id:
        return relationship
    try:
        remote = default_client().graph_as_admin_agent.get_gdap_relationship(
            relationship_id=relationship.ms_relationship_id
        )
    except NotFound:
        remote = None
    now = timezone.now()
    before = relationship.status
    if remote is None:
        relationship.status = GdapRelationship.Status.TERMINATED
    else:
        relationship.ms_status = remote.status
        relationship.ends_at = remote.end_date_time
        activated = remote.raw.get("activatedDateTime")
        if activated:
            relationship.activated_at = parse_datetime(activated)
        relationship.status = gdap_status_for(remote.status, remote.end_date_time, now)
    relationship.last_refreshed_at = now
    relationship.save()
    tenant = relationship.microsoft_tenant
    new_tenant_status = TENANT_STATUS_FOR_GDAP.get(relationship.status)
    if new_tenant_status and tenant.relationship_status != new_tenant_status:
        tenant.relationship_status = new_tenant_status
        tenant.save(update_fields=["relationship_status", "updated_at"])
    if relationship.status in (GdapRelationship.Status.ACTIVE, GdapRelationship.Status.EXPIRING):
        tenant_domains_fill(tenant=tenant)
    if before != relationship.status:
        audit_record(actor=Actor.system("gdap_refresh"), action="gdap.status_changed",
                     organization=relationship.organization_id, target=relationship,
                     metadata={"from": before, "to": relationship.status})
        if relationship.status == GdapRelationship.Status.ACTIVE and before in (
            GdapRelationship.Status.APPROVAL_PENDING, GdapRelationship.Status.REQUESTING
        ):
            onboarding = TenantOnboarding.objects.filter(microsoft_tenant=tenant).first()
            if onboarding is not None:
                onboarding.status = TenantOnboarding.Status.COMPLETED
                onboarding.save(update_fields=["status", "updated_at"])
                enqueue_consent(onboarding, Actor.system("gdap_refresh"))
    return relationship


def tenant_domains_fill(*, tenant: MicrosoftTenant) -> bool:
    """A linked tenant's domains, from Partner Center's customer record (companyProfile.domain and the
    custom domains), once the relationship lets us read it. Nothing is guessed: while Microsoft does not
    say, the domain stays empty and pages show the tenant as linked without one."""
    if tenant.primary_domain or not tenant.partner_customer_id:
        return False
    try:
        customer = default_client().partner_center.get_customer(tenant.partner_customer_id)
    except MicrosoftError as exc:
        if exc.retryable:
            raise
        return False  # not (yet) a customer of ours, or no access: try again at the next refresh
    if not customer.domain:
        return False
    domains = [customer.domain, *(d for d in customer.raw.get("customDomains") or [] if d != customer.domain)]
    tenant.primary_domain = customer.domain[:253]
    tenant.verified_domains = domains
    tenant.full_clean()
    tenant.save(update_fields=["primary_domain", "verified_domains", "updated_at"])
    audit_record(actor=Actor.system("gdap_refresh"), action="tenant.domains_updated",
                 organization=tenant.organization_id, target=tenant, metadata={"domains": len(domains)})
    return True
