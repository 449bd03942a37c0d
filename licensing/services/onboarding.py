"""Bringing a Microsoft tenant under management.

Create a new customer tenant, or link an existing one through a GDAP relationship the
customer approves; accept the Microsoft Customer Agreement; consent the partner app so
Graph calls into the tenant work. Every Microsoft write is an outbox operation.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import MicrosoftTenant
from licensing.microsoft.client import default_client
from licensing.microsoft.errors import Conflict, MicrosoftError, NotFound
from licensing.microsoft.resources import Address, parse_datetime
from licensing.models import CustomerAgreement, GdapRelationship, ProvisioningOperation, TenantOnboarding
from licensing.provisioning import operation_enqueue, register_operation
from security.audit import Actor, audit_record

DOMAIN_SUFFIX = ".onmicrosoft.com"
DOMAIN_PREFIX_RE = re.compile(r"^[a-z0-9]{1,27}$")

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
CONSENT_SCOPES = "User.ReadWrite.All,Directory.Read.All,LicenseAssignment.ReadWrite.All,AuditLog.Read.All"

# Least-privilege roles the portal asks for (Entra role template ids, reference §4).
GDAP_ROLES = {
    "88d8e3e3-8f55-4a1e-953a-9b9898b8876b": "Directory Readers",
    "4d6ac14f-3453-41d0-bef9-a3e0c569773a": "License Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
}
GDAP_APPROVAL_URL = "https://admin.microsoft.com/AdminPortal/Home#/partners/invitation/granularAdminRelationships/{id}"
GDAP_EXPIRING_DAYS = 30
AGREEMENT_EXISTS = "600061"

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


class OnboardingError(ValidationError):
    """A request the onboarding flow refuses, with a message for the person."""


def _tenant(organization) -> MicrosoftTenant:
    tenant, _ = MicrosoftTenant.objects.for_org(organization).get_or_create(organization=organization)
    return tenant


def normalise_domain_prefix(value: str) -> str:
    prefix = (value or "").strip().lower().removesuffix(DOMAIN_SUFFIX)
    if not DOMAIN_PREFIX_RE.match(prefix):
        raise OnboardingError(
            "Use 1 to 27 lowercase letters or digits, without spaces or dashes (for example contoso).",
            code="invalid_domain",
        )
    return prefix


@dataclass(frozen=True)
class DomainCheck:
    domain: str
    available: bool | None
    message: str


def tenant_domain_check(*, prefix: str) -> DomainCheck:
    """Live availability of ``<prefix>.onmicrosoft.com``.

    The one Microsoft call made from a web request: a side-effect-free HEAD that sends no
    personal data, needed while the person types. A failure answers "unknown", and the
    creation operation checks again.
    """
    try:
        prefix = normalise_domain_prefix(prefix)
    except OnboardingError as exc:
        return DomainCheck(domain="", available=False, message=exc.messages[0])
    domain = f"{prefix}{DOMAIN_SUFFIX}"
    try:
        available = default_client().partner_center.domain_available(domain)
    except MicrosoftError:
        return DomainCheck(domain, None, "We could not check this name right now; you can still submit it.")
    return DomainCheck(domain, available, "Available." if available else "This name is already taken.")


def _require_unlinked(tenant: MicrosoftTenant) -> None:
    if tenant.relationship_status in (MicrosoftTenant.RelationshipStatus.ACTIVE,
                                      MicrosoftTenant.RelationshipStatus.EXPIRING):
        raise OnboardingError("This organisation already has a linked Microsoft tenant.", code="already_linked")
    if TenantOnboarding.objects.for_org(tenant.organization_id).filter(
        status__in=[TenantOnboarding.Status.SUBMITTED, TenantOnboarding.Status.WAITING_FOR_CUSTOMER]
    ).exists():
        raise OnboardingError("A tenant request is already in progress.", code="in_progress")


@transaction.atomic
def tenant_create(
    *, organization, actor: Actor, user, domain_prefix: str, company_name: str, address: dict, contact: dict
) -> TenantOnboarding:
    """Ask Microsoft to create a new customer tenant for the organisation."""
    tenant = _tenant(organization)
    _require_unlinked(tenant)
    domain = f"{normalise_domain_prefix(domain_prefix)}{DOMAIN_SUFFIX}"
    TenantOnboarding.objects.for_org(organization).filter(status=TenantOnboarding.Status.FAILED).delete()
    onboarding = TenantOnboarding(
        organization=organization, microsoft_tenant=tenant, mode=TenantOnboarding.Mode.CREATE, domain=domain,
        company_name=company_name.strip(), address=address, primary_contact=contact, requested_by=user,
    )
    onboarding.full_clean()
    onboarding.save()
    tenant.relationship_status = MicrosoftTenant.RelationshipStatus.PENDING
    tenant.primary_domain = domain
    tenant.save(update_fields=["relationship_status", "primary_domain", "updated_at"])
    onboarding.operation = operation_enqueue(
        organization=organization, kind="tenant.create_customer", payload={"onboarding_id": str(onboarding.pk)},
        actor=actor, target=onboarding,
    )
    onboarding.save(update_fields=["operation", "updated_at"])
    audit_record(actor=actor, action="tenant.create_requested", organization=organization, target=onboarding)
    return onboarding


@register_operation("tenant.create_customer", on_failure=lambda op: _onboarding_failed(op))
def _run_create_customer(operation: ProvisioningOperation) -> dict:
    onboarding = TenantOnboarding.objects.select_related("microsoft_tenant").get(pk=operation.payload["onboarding_id"])
    address, contact = onboarding.address or {}, onboarding.primary_contact or {}
    customer = default_client().partner_center.create_customer(
        organization=onboarding.organization, request_id=str(operation.ms_request_id), domain=onboarding.domain,
        company_name=onboarding.company_name, email=contact.get("email", ""),
        address=Address(
            first_name=contact.get("first_name", ""), last_name=contact.get("last_name", ""),
            address_line1=address.get("address_line1", ""), city=address.get("city", ""),
            state=address.get("state", ""), postal_code=address.get("postal_code", ""),
            country=address.get("country", ""), phone_number=contact.get("phone", ""),
        ),
    )
    tenant = onboarding.microsoft_tenant
    tenant.tenant_id = uuid.UUID(customer.tenant_id)
    tenant.partner_customer_id = customer.id
    tenant.primary_domain = customer.domain or onboarding.domain
    tenant.verified_domains = [tenant.primary_domain]
    # A tenant we create is our reseller customer from the start.
    tenant.relationship_status = MicrosoftTenant.RelationshipStatus.ACTIVE
    tenant.save()
    onboarding.status = TenantOnboarding.Status.COMPLETED
    onboarding.initial_admin_username = customer.admin_user_name
    onboarding.initial_admin_password = customer.admin_password
    onboarding.save()
    audit_record(actor=Actor.system("provisioning"), action="tenant.created", organization=onboarding.organization,
                 target=tenant)
    _enqueue_consent(onboarding, Actor.system("onboarding"))
    return {"customer_id": customer.id}


def _onboarding_failed(operation: ProvisioningOperation) -> None:
    onboarding = TenantOnboarding.objects.filter(pk=operation.payload.get("onboarding_id")).first()
    if onboarding is None:
        return
    onboarding.status = TenantOnboarding.Status.FAILED
    onboarding.failure_reason = operation.failure_reason or operation.last_error[:300]
    onboarding.save(update_fields=["status", "failure_reason", "updated_at"])
    tenant = onboarding.microsoft_tenant
    if tenant.tenant_id is None:
        tenant.relationship_status = MicrosoftTenant.RelationshipStatus.NOT_LINKED
        tenant.save(update_fields=["relationship_status", "updated_at"])


@transaction.atomic
def credentials_acknowledge(*, onboarding: TenantOnboarding, actor: Actor) -> None:
    """The customer saved the first admin's password: erase our copy."""
    onboarding.initial_admin_username = ""
    onboarding.initial_admin_password = ""
    onboarding.credentials_acknowledged_at = timezone.now()
    onboarding.save(update_fields=["initial_admin_username", "initial_admin_password",
                                   "credentials_acknowledged_at", "updated_at"])
    audit_record(actor=actor, action="tenant.credentials_acknowledged", organization=onboarding.organization_id,
                 target=onboarding)


@transaction.atomic
def tenant_link_request(*, organization, actor: Actor, user, tenant_id: str, company_name: str) -> GdapRelationship:
    """Ask for a GDAP relationship with an existing tenant; the customer approves it in Microsoft's admin center."""
    try:
        tenant_uuid = uuid.UUID(str(tenant_id).strip())
    except ValueError:
        raise OnboardingError("Enter the tenant ID as shown in the Microsoft Entra admin center (a GUID).",
                              code="invalid_tenant_id") from None
    tenant = _tenant(organization)
    _require_unlinked(tenant)
    if MicrosoftTenant.unscoped_objects.filter(tenant_id=tenant_uuid).exclude(pk=tenant.pk).exists():
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
                _enqueue_consent(onboarding, Actor.system("gdap_refresh"))
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


def _enqueue_consent(onboarding: TenantOnboarding, actor: Actor) -> None:
    if onboarding.consent_status in (TenantOnboarding.ConsentStatus.REQUESTED, TenantOnboarding.ConsentStatus.GRANTED):
        return
    onboarding.consent_status = TenantOnboarding.ConsentStatus.REQUESTED
    onboarding.consent_operation = operation_enqueue(
        organization=onboarding.organization, kind="tenant.app_consent", actor=actor, target=onboarding,
        payload={"onboarding_id": str(onboarding.pk)},
    )
    onboarding.save(update_fields=["consent_status", "consent_operation", "updated_at"])


@transaction.atomic
def app_consent_request(*, organization, actor: Actor) -> TenantOnboarding:
    tenant = _tenant(organization)
    if tenant.tenant_id is None:
        raise OnboardingError("Link or create a Microsoft tenant first.", code="no_tenant")
    onboarding = TenantOnboarding.objects.for_org(organization).filter(microsoft_tenant=tenant).first()
    if onboarding is None:
        onboarding = TenantOnboarding.objects.create(
            organization=organization, microsoft_tenant=tenant, mode=TenantOnboarding.Mode.LINK,
            status=TenantOnboarding.Status.COMPLETED, domain=tenant.primary_domain or str(tenant.tenant_id),
            company_name=organization.display_name,
        )
    if onboarding.consent_status == TenantOnboarding.ConsentStatus.FAILED:
        onboarding.consent_status = TenantOnboarding.ConsentStatus.NOT_REQUESTED
    _enqueue_consent(onboarding, actor)
    audit_record(actor=actor, action="tenant.consent_requested", organization=organization, target=onboarding)
    return onboarding


def _consent_failed(operation: ProvisioningOperation) -> None:
    TenantOnboarding.objects.filter(pk=operation.payload.get("onboarding_id")).update(
        consent_status=TenantOnboarding.ConsentStatus.FAILED
    )


@register_operation("tenant.app_consent", on_failure=_consent_failed)
def _run_app_consent(operation: ProvisioningOperation) -> dict:
    onboarding = TenantOnboarding.objects.select_related("microsoft_tenant").get(pk=operation.payload["onboarding_id"])
    customer_id = onboarding.microsoft_tenant.partner_customer_id
    pc = default_client().partner_center
    existing = pc.list_application_consents(customer_id=customer_id)
    if not any(c.get("applicationId") == settings.MS_CLIENT_ID for c in existing):
        pc.create_application_consent(customer_id=customer_id, request_id=str(operation.ms_request_id),
                                      grants=[(GRAPH_APP_ID, CONSENT_SCOPES)])
    onboarding.consent_status = TenantOnboarding.ConsentStatus.GRANTED
    onboarding.consent_granted_at = timezone.now()
    onboarding.save(update_fields=["consent_status", "consent_granted_at", "updated_at"])
    return {"consented": True}


# -- Microsoft Customer Agreement ----------------------------------------------------------------
def agreement_current(organization) -> CustomerAgreement | None:
    return (
        CustomerAgreement.objects.for_org(organization)
        .exclude(status=CustomerAgreement.Status.FAILED)
        .order_by("-accepted_at")
        .first()
    )


@transaction.atomic
def agreement_accept(
    *, organization, actor: Actor, user, first_name: str, last_name: str, email: str, phone: str = "",
    ip_address: str = "", user_agent: str = "",
) -> CustomerAgreement:
    """Record that ``user`` accepted the MCA (who, when, from where, which version) and attest it to Microsoft."""
    tenant = _tenant(organization)
    if tenant.tenant_id is None or tenant.relationship_status not in (
        MicrosoftTenant.RelationshipStatus.ACTIVE, MicrosoftTenant.RelationshipStatus.EXPIRING
    ):
        raise OnboardingError("Link or create your Microsoft tenant before accepting the agreement.", code="no_tenant")
    current = agreement_current(organization)
    if current is not None and current.version == settings.LICENSING_MCA_VERSION:
        return current
    agreement = CustomerAgreement(
        organization=organization, accepted_by=user, accepted_at=timezone.now(), ip_address=ip_address or "",
        user_agent=(user_agent or "")[:300], version=settings.LICENSING_MCA_VERSION,
        template_id="", primary_contact={"first_name": first_name, "last_name": last_name, "email": email,
                                          "phone": phone},
    )
    agreement.full_clean(exclude=["template_id"])
    agreement.save()
    agreement.operation = operation_enqueue(
        organization=organization, kind="tenant.accept_agreement", actor=actor, target=agreement,
        payload={"agreement_id": str(agreement.pk)},
    )
    agreement.save(update_fields=["operation", "updated_at"])
    audit_record(actor=actor, action="agreement.accepted", organization=organization, target=agreement,
                 metadata={"version": agreement.version})
    return agreement


def _agreement_failed(operation: ProvisioningOperation) -> None:
    CustomerAgreement.objects.filter(pk=operation.payload.get("agreement_id")).update(
        status=CustomerAgreement.Status.FAILED
    )


@register_operation("tenant.accept_agreement", on_failure=_agreement_failed)
def _run_accept_agreement(operation: ProvisioningOperation) -> dict:
    agreement = CustomerAgreement.objects.get(pk=operation.payload["agreement_id"])
    tenant = MicrosoftTenant.objects.get(organization_id=agreement.organization_id)
    contact = agreement.primary_contact or {}
    pc = default_client().partner_center
    template_id = operation.checkpoint.get("template_id") or pc.mca_template_id()
    operation.checkpoint["template_id"] = template_id
    try:
        pc.accept_customer_agreement(
            organization=agreement.organization, request_id=str(operation.ms_request_id),
            customer_id=tenant.partner_customer_id, first_name=contact.get("first_name", ""),
            last_name=contact.get("last_name", ""), email=contact.get("email", ""),
            phone_number=contact.get("phone", ""), date_agreed=agreement.accepted_at, template_id=template_id,
        )
    except Conflict as exc:
        if exc.code != AGREEMENT_EXISTS:
            raise
        # Microsoft already holds an attestation for this customer: ours is recorded, nothing to resend.
    agreement.template_id = template_id
    agreement.status = CustomerAgreement.Status.CONFIRMED
    agreement.confirmed_at = timezone.now()
    agreement.save(update_fields=["template_id", "status", "confirmed_at", "updated_at"])
    return {"template_id": template_id}


def require_ready_to_buy(organization) -> MicrosoftTenant:
    """Raise with a clear next step unless the tenant is linked and the MCA is accepted."""
    tenant = MicrosoftTenant.objects.for_org(organization).first()
    if tenant is None or tenant.tenant_id is None or tenant.relationship_status not in (
        MicrosoftTenant.RelationshipStatus.ACTIVE, MicrosoftTenant.RelationshipStatus.EXPIRING
    ):
        raise OnboardingError("Link or create your Microsoft tenant before buying.", code="no_tenant")
    if agreement_current(organization) is None:
        raise OnboardingError("Accept the Microsoft Customer Agreement before your first purchase.",
                              code="agreement_required")
    return tenant

