from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.fields import EncryptedTextField
from core.registry import Category, Personal, Retention, Subject, declare

from .base import BaseModel, TenantModel

REASON_MAX_LENGTH = 300


class Disclosure(BaseModel):
    """One sending of personal data to a third party: the disclosure log the privacy policy promises.

    It records who received which categories of data, for which purpose, through which operation,
    about how many subjects, never the data itself. It answers "to whom did you disclose my data"
    (right to know) and regulators' questions, so it must outlive the organisation it concerns:
    ``organization`` keeps the id without a database constraint (``DO_NOTHING``,
    ``db_constraint=False``) rather than being nulled or cascaded. Deleting or erasing an
    organisation therefore leaves its disclosure history attributable to the id on the erasure
    certificate, while the row itself holds nothing personal that erasure would have to remove.
    """

    class Recipient(models.TextChoices):
        MICROSOFT = "microsoft", "Microsoft"
        DISTRIBUTOR = "distributor", "Distributor"
        REGULATOR = "regulator", "Regulator"

    class Purpose(models.TextChoices):
        PROVISIONING = "provisioning", "Provisioning the customer's Microsoft tenant and subscriptions"
        LICENSE_MANAGEMENT = "license_management", "Managing users and licence assignments"
        BILLING = "billing", "Billing and reconciliation"
        SECURITY = "security", "Security monitoring and fraud response"
        LEGAL_OBLIGATION = "legal_obligation", "Complying with a legal obligation"
        # Not strictly necessary: refused for an organisation that opted out of sale and sharing.
        MARKETING = "marketing", "Marketing shared with a distributor"

    recipient = models.CharField(max_length=16, choices=Recipient.choices)
    organization = models.ForeignKey(
        settings.TENANT_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        db_index=True,
    )
    categories = models.JSONField(default=list)
    purpose = models.CharField(max_length=32, choices=Purpose.choices)
    operation = models.CharField(max_length=120)
    subject_count = models.PositiveIntegerField(default=1)
    request_id = models.CharField(max_length=64, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        db_table = "privacy_disclosure"
        ordering = ["-occurred_at"]
        constraints = [
            # A retried or redelivered operation reuses its MS-RequestId: one disclosure, not one per try.
            models.UniqueConstraint(
                fields=["recipient", "operation", "request_id"],
                condition=~Q(request_id=""),
                name="privacy_disclosure_once_per_request",
            ),
        ]

    def __str__(self):
        return f"{self.get_recipient_display()}: {self.operation} ({', '.join(self.categories)})"

    def clean(self):
        if not isinstance(self.categories, list) or not self.categories:
            raise ValidationError({"categories": "List at least one data category."})
        unknown = sorted(set(map(str, self.categories)) - set(Category.values))
        if unknown:
            raise ValidationError({"categories": f"Unknown data categories: {', '.join(unknown)}."})


# The log describes disclosures; it holds no personal data itself (no names, addresses or ids of people).
declare(
    Disclosure,
    not_personal=["recipient", "categories", "purpose", "operation", "subject_count", "request_id", "occurred_at"],
)


class FieldLock(TenantModel):
    """A field a privacy correction has fixed: syncs from outside sources must not overwrite it.

    Written through ``core.field_locks.lock_field`` by the audited correction service
    (``privacy.services.corrections``); read by every sync write path through
    ``core.field_locks.locked_fields``.
    """

    # Encrypted before it moved down from its first app: keep the label its ciphertexts are bound to.
    ciphertext_label = "privacy.fieldlock"

    model_label = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    field_name = models.CharField(max_length=64)
    locked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Why the value was corrected: free text that usually names or describes the person, so it is encrypted.
    reason = EncryptedTextField(blank=True, default="", validators=[MaxLengthValidator(REASON_MAX_LENGTH)])
    # GDPR Art. 18(1)(a): the value's accuracy is disputed; it is not to be used beyond storage until resolved.
    restricted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "privacy_fieldlock"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "model_label", "object_id", "field_name"], name="privacy_field_lock_once"
            )
        ]
        indexes = [models.Index(fields=["organization", "model_label", "object_id"], name="privacy_field_lock_idx")]

    def __str__(self):
        return f"{self.model_label}.{self.field_name} of {self.object_id} locked"


# The locked row is generic (model_label + object_id), so the reason is filed under the organisation that
# controls it, as corrections of its users' data.
declare(
    FieldLock,
    subject=Subject.ORGANIZATION,
    subject_lookup="organization",
    personal={"reason": Personal(Category.IDENTITY, Retention.ACCOUNT)},
    not_personal=["model_label", "object_id", "field_name", "locked_by", "restricted_at"],
)


class FieldLockConflict(TenantModel):
    """A sync delivered a different value for a locked field and was refused: staff review it.

    One open row per locked field; a later refusal bumps ``occurrences`` and ``last_seen_at``. The
    incoming value is not stored: the corrected value stands, and the source can be asked again.
    """

    model_label = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    field_name = models.CharField(max_length=64)
    source = models.CharField(max_length=64)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    occurrences = models.PositiveIntegerField(default=1)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "model_label", "object_id", "field_name"],
                condition=Q(resolved_at__isnull=True),
                name="privacy_field_conflict_open_once",
            )
        ]

    def __str__(self):
        return f"{self.source} conflict on {self.model_label}.{self.field_name} of {self.object_id}"


declare(
    FieldLockConflict,
    not_personal=[
        "model_label", "object_id", "field_name", "source", "first_seen_at", "last_seen_at", "occurrences",
        "resolved_at", "resolved_by",
    ],
)
