"""Bringing a Microsoft tenant under management: create or link, GDAP, agreement, app consent.

accounts.MicrosoftTenant holds the link itself (tenant id, domain, relationship
status); these rows hold how it was made and what Microsoft still has to confirm.
"""

from django.conf import settings
from django.db import models

from core.fields import EncryptedCharField, EncryptedJSONField
from core.models import TenantModel
from core.registry import Category, Personal, Retention, Subject, declare

from .provisioning import ProvisioningOperation


class TenantOnboarding(TenantModel):
    """How the organisation's tenant was created or linked, one per organisation."""

    class Mode(models.TextChoices):
        CREATE = "create", "Create a new Microsoft tenant"
        LINK = "link", "Link an existing tenant"

    class Status(models.TextChoices):
        SUBMITTED = "submitted", "Submitted"
        WAITING_FOR_CUSTOMER = "waiting_for_customer", "Waiting for your approval in Microsoft"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    class ConsentStatus(models.TextChoices):
        NOT_REQUESTED = "not_requested", "Not requested"
        REQUESTED = "requested", "Requested"
        GRANTED = "granted", "Granted"
        FAILED = "failed", "Failed"

    microsoft_tenant = models.OneToOneField(
        "accounts.MicrosoftTenant", on_delete=models.CASCADE, related_name="onboarding"
    )
    mode = models.CharField(max_length=8, choices=Mode.choices)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.SUBMITTED)
    domain = EncryptedCharField(max_length=253)
    company_name = EncryptedCharField(max_length=200)
    # {"address_line1", "city", "state", "postal_code", "country"}
    address = EncryptedJSONField(null=True, blank=True)
    # {"first_name", "last_name", "email", "phone"}
    primary_contact = EncryptedJSONField(null=True, blank=True)
    # The new tenant's first global admin, shown once to the customer and then erased.
    initial_admin_username = EncryptedCharField(max_length=254, blank=True, default="")
    initial_admin_password = EncryptedCharField(max_length=128, blank=True, default="")
    credentials_acknowledged_at = models.DateTimeField(null=True, blank=True)
    operation = models.ForeignKey(
        ProvisioningOperation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    consent_status = models.CharField(
        max_length=16, choices=ConsentStatus.choices, default=ConsentStatus.NOT_REQUESTED
    )
    consent_granted_at = models.DateTimeField(null=True, blank=True)
    consent_operation = models.ForeignKey(
        ProvisioningOperation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    failure_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization"], name="one_tenant_onboarding_per_org")]

    def __str__(self):
        return f"{self.get_mode_display()}: {self.domain}"


declare(
    TenantOnboarding,
    subject=Subject.ORGANIZATION,
    subject_lookup="organization",
    personal={
        "domain": Personal(Category.TENANT, Retention.TENANT_LINK),
        "company_name": Personal(Category.IDENTITY, Retention.TENANT_LINK),
        "address": Personal(Category.CONTACT, Retention.TENANT_LINK),
        "primary_contact": Personal(Category.CONTACT, Retention.TENANT_LINK),
        "initial_admin_username": Personal(Category.SECURITY, Retention.TENANT_LINK),
        "initial_admin_password": Personal(Category.SECURITY, Retention.TENANT_LINK, secret=True),
    },
    not_personal=[
        "microsoft_tenant",
        "mode",
        "status",
        "credentials_acknowledged_at",
        "operation",
        "consent_status",
        "consent_granted_at",
        "consent_operation",
        "requested_by",
        "failure_reason",
    ],
)


class GdapRelationship(TenantModel):
    """A granular delegated admin relationship with the customer's tenant, refreshed periodically."""

    class Status(models.TextChoices):
        REQUESTING = "requesting", "Being requested"
        APPROVAL_PENDING = "approval_pending", "Waiting for customer approval"
        ACTIVE = "active", "Active"
        EXPIRING = "expiring", "Expiring"
        EXPIRED = "expired", "Expired"
        TERMINATED = "terminated", "Terminated"
        FAILED = "failed", "Failed"

    microsoft_tenant = models.ForeignKey(
        "accounts.MicrosoftTenant", on_delete=models.CASCADE, related_name="gdap_relationships"
    )
    ms_relationship_id = models.CharField(max_length=100, null=True, blank=True, unique=True)
    display_name = models.CharField(max_length=50)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.REQUESTING, db_index=True)
    ms_status = models.CharField(max_length=32, blank=True)
    # [{"id": role template id, "name": display name}]
    roles = models.JSONField(default=list, blank=True)
    duration = models.CharField(max_length=16, default="P730D")
    auto_extend = models.CharField(max_length=16, default="P180D")
    approval_url = models.URLField(max_length=500, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    operation = models.ForeignKey(
        ProvisioningOperation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.display_name


declare(
    GdapRelationship,
    not_personal=[
        "microsoft_tenant",
        "ms_relationship_id",
        "display_name",
        "status",
        "ms_status",
        "roles",
        "duration",
        "auto_extend",
        "approval_url",
        "activated_at",
        "ends_at",
        "last_refreshed_at",
        "operation",
    ],
)


class CustomerAgreement(TenantModel):
    """Microsoft Customer Agreement acceptance: who, when, from where, which version. Needed before buying."""

    class Status(models.TextChoices):
        SENDING = "sending", "Sending to Microsoft"
        CONFIRMED = "confirmed", "Confirmed by Microsoft"
        FAILED = "failed", "Failed"

    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    accepted_at = models.DateTimeField()
    ip_address = EncryptedCharField(max_length=64, blank=True, default="")
    user_agent = EncryptedCharField(max_length=300, blank=True, default="")
    agreement_type = models.CharField(max_length=64, default="MicrosoftCustomerAgreement")
    template_id = models.CharField(max_length=100)
    version = models.CharField(max_length=64)
    # {"first_name", "last_name", "email", "phone"} of the person who accepted, as sent to Microsoft.
    primary_contact = EncryptedJSONField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SENDING)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    operation = models.ForeignKey(
        ProvisioningOperation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-accepted_at"]

    def __str__(self):
        return f"{self.agreement_type} {self.version}"


declare(
    CustomerAgreement,
    subject=Subject.ORGANIZATION,
    subject_lookup="organization",
    personal={
        "ip_address": Personal(Category.TECHNICAL_LOG, Retention.ACTIVE_PLUS_LEGAL),
        "user_agent": Personal(Category.TECHNICAL_LOG, Retention.ACTIVE_PLUS_LEGAL),
        "primary_contact": Personal(Category.CONTACT, Retention.ACTIVE_PLUS_LEGAL),
    },
    not_personal=[
        "accepted_by",
        "accepted_at",
        "agreement_type",
        "template_id",
        "version",
        "status",
        "confirmed_at",
        "operation",
    ],
)
