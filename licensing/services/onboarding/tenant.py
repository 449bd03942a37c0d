"""The organisation's Microsoft tenant row, and the refusal every onboarding step raises."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from accounts.models import MicrosoftTenant
from licensing.models import TenantOnboarding


class OnboardingError(ValidationError):
    """A request the onboarding flow refuses, with a message for the person."""


def tenant_row(organization) -> MicrosoftTenant:
    """The organisation's one tenant link, created (not linked) on first use."""
    tenant, _ = MicrosoftTenant.objects.for_org(organization).get_or_create(organization=organization)
    return tenant


def require_unlinked(tenant: MicrosoftTenant) -> None:
    if tenant.relationship_status in (MicrosoftTenant.RelationshipStatus.ACTIVE,
                                      MicrosoftTenant.RelationshipStatus.EXPIRING):
        raise OnboardingError("This organisation already has a linked Microsoft tenant.", code="already_linked")
    if TenantOnboarding.objects.for_org(tenant.organization_id).filter(
        status__in=[TenantOnboarding.Status.SUBMITTED, TenantOnboarding.Status.WAITING_FOR_CUSTOMER]
    ).exists():
        raise OnboardingError("A tenant request is already in progress.", code="in_progress")
