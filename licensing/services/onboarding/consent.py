"""Consent for the partner app in the customer tenant, so that Graph calls into it work."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.audit import Actor, audit_record
from licensing.microsoft.client import default_client
from licensing.models import ProvisioningOperation, TenantOnboarding
from licensing.provisioning import operation_enqueue, register_operation

from .tenant import OnboardingError, tenant_row

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
CONSENT_SCOPES = "User.ReadWrite.All,Directory.Read.All,LicenseAssignment.ReadWrite.All,AuditLog.Read.All"


def enqueue_consent(onboarding: TenantOnboarding, actor: Actor) -> None:
    """Once per onboarding: a consent already requested or granted is not asked for again."""
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
    tenant = tenant_row(organization)
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
    enqueue_consent(onboarding, actor)
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
