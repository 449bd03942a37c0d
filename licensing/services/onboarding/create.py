"""A new customer tenant: the live domain check, the creation request and its outbox operation,
and erasing the first admin's password once the customer has saved it.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts.models import MicrosoftTenant
from core.audit import Actor, audit_record
from licensing.microsoft.client import default_client
from licensing.microsoft.errors import MicrosoftError
from licensing.microsoft.resources import Address
from licensing.models import ProvisioningOperation, TenantOnboarding
from licensing.provisioning import operation_enqueue, register_operation

from .consent import enqueue_consent
from .tenant import OnboardingError, require_unlinked, tenant_row

DOMAIN_SUFFIX = ".onmicrosoft.com"
DOMAIN_PREFIX_RE = re.compile(r"^[a-z0-9]{1,27}$")


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


@transaction.atomic
def tenant_create(
    *, organization, actor: Actor, user, domain_prefix: str, company_name: str, address: dict, contact: dict
) -> TenantOnboarding:
    """Ask Microsoft to create a new customer tenant for the organisation."""
    tenant = tenant_row(organization)
    require_unlinked(tenant)
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
    enqueue_consent(onboarding, Actor.system("onboarding"))
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
