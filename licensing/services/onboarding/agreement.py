"""The Microsoft Customer Agreement: recorded acceptance, its attestation to Partner Center, and the
check that an organisation may buy.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import MicrosoftTenant
from core.audit import Actor, audit_record
from licensing.microsoft.client import default_client
from licensing.microsoft.errors import Conflict
from licensing.models import CustomerAgreement, ProvisioningOperation
from licensing.provisioning import operation_enqueue, register_operation

from .tenant import OnboardingError, tenant_row

AGREEMENT_EXISTS = "600061"


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
    tenant = tenant_row(organization)
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
