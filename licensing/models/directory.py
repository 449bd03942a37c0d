"""The customer's Microsoft directory as last synced from Graph: users, subscribed SKUs, sync runs.

``TenantSku`` doubles as the seat pool: assignments lock its row (``select_for_update``)
before counting seats, so concurrent requests can never assign more than purchased.
"""

from django.conf import settings
from django.db import models
from django.db.models import Case, F, When
from django.db.models.lookups import LessThan

from core.fields import BlindIndexField, EncryptedCharField, EncryptedUUIDField, UUIDIndexField
from core.models import TenantModel
from core.registry import Category, Personal, Retention, Subject, declare

UPN_INDEX = "directory-user-upn"
MAIL_INDEX = "directory-user-mail"
GRAPH_ID_INDEX = "directory-user-graph-id"


def last_active(prefix: str = "") -> Case:
    """When a directory user was last active: their last sign-in, or when they were created if they never
    signed in. ``prefix`` reaches the user through a relation (``"user__"`` from an assignment).

    A ``CASE``, not ``COALESCE``: under row-level security PostgreSQL uses a query's condition in an index scan
    only if it cannot leak rows the policy hides, and it does not know that of ``COALESCE``, so the index on it
    went unused and the whole directory was read (11 ms at 10,000 users, against 0.2 ms through the index).
    """
    return Case(When(**{f"{prefix}last_sign_in_at__isnull": True}, then=F(f"{prefix}created_at")),
                default=F(f"{prefix}last_sign_in_at"))


def inactive_since(cutoff, prefix: str = "") -> LessThan:
    """The user has not been active since ``cutoff`` (a user who never signed in counts once they are that
    old). Written over :func:`last_active`, the expression ``directory_user_activity_idx`` indexes, so every
    inactive filter can be read off that index instead of scanning the directory."""
    return LessThan(last_active(prefix), cutoff)


class DirectorySync(TenantModel):
    """One run of the directory sync for one tenant. Progress is written per page, so the UI can poll it."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        PERIODIC = "periodic", "Scheduled"
        MANUAL = "manual", "Requested"
        DEMO = "demo", "Demo seed"

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    trigger = models.CharField(max_length=12, choices=Trigger.choices, default=Trigger.PERIODIC)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    pages = models.PositiveIntegerField(default=0)
    users_seen = models.PositiveIntegerField(default=0)
    users_created = models.PositiveIntegerField(default=0)
    users_updated = models.PositiveIntegerField(default=0)
    users_unchanged = models.PositiveIntegerField(default=0)
    users_removed = models.PositiveIntegerField(default=0)
    users_expected = models.PositiveIntegerField(null=True, blank=True)
    skus_seen = models.PositiveIntegerField(default=0)
    # Graph's @odata.nextLink after the last page written: a redelivered run continues from here.
    next_link = models.TextField(blank=True, default="")
    resumed = models.PositiveSmallIntegerField(default=0)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One sync in flight per organisation: a second request joins the running one.
            models.UniqueConstraint(
                fields=["organization"],
                condition=models.Q(status__in=["queued", "running"]),
                name="one_directory_sync_in_flight",
            )
        ]

    def __str__(self):
        return f"Directory sync {self.created_at:%Y-%m-%d %H:%M} ({self.get_status_display()})"

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)


declare(
    DirectorySync,
    not_personal=[
        "status", "trigger", "requested_by", "started_at", "finished_at", "heartbeat_at", "pages",
        "users_seen", "users_created", "users_updated", "users_unchanged", "users_removed", "users_expected",
        "skus_seen", "next_link", "resumed", "error_code", "error_message",
    ],
)


class TenantSku(TenantModel):
    """A SKU subscribed in the customer's tenant (Graph subscribedSkus) and its seat pool."""

    sku_id = models.UUIDField()
    sku_part_number = models.CharField(max_length=120, blank=True)
    display_name = models.CharField(max_length=200, blank=True)
    capability_status = models.CharField(max_length=20, default="Enabled")
    # Seats Microsoft says are paid for and usable (prepaidUnits.enabled + warning).
    purchased = models.PositiveIntegerField(default=0)
    suspended = models.PositiveIntegerField(default=0)
    # consumedUnits as last reported by Graph; our own count is the assignments table.
    consumed_in_tenant = models.PositiveIntegerField(default=0)
    service_plans = models.JSONField(default=list, blank=True)
    subscription_ids = models.JSONField(default=list, blank=True)
    # Non-user SKUs (e.g. Defender for Servers) are excluded from waste reports.
    applies_to_users = models.BooleanField(default=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    # Set by the reconcile when Microsoft lowered the seats below the licenses held (the seat
    # invariant, decision 011); cleared once it holds again. The portal never unassigns by itself.
    over_assigned_since = models.DateTimeField(null=True, blank=True)
    over_assigned_by = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["display_name", "sku_part_number"]
        constraints = [models.UniqueConstraint(fields=["organization", "sku_id"], name="tenant_sku_unique")]

    def __str__(self):
        return self.label_of(self.display_name, self.sku_part_number, self.sku_id)

    @staticmethod
    def label_of(display_name: str, sku_part_number: str, sku_id) -> str:
        """The SKU's name as pages show it, from its columns alone (for reads that fetch no instance)."""
        return display_name or sku_part_number or str(sku_id)

    @property
    def label(self) -> str:
        return str(self)


declare(
    TenantSku,
    not_personal=[
        "sku_id", "sku_part_number", "display_name", "capability_status", "purchased", "suspended",
        "consumed_in_tenant", "service_plans", "subscription_ids", "applies_to_users", "last_synced_at",
        "over_assigned_since", "over_assigned_by",
    ],
)


class DirectoryUser(TenantModel):
    """A user of the customer's Entra directory. Personal fields are encrypted with the organisation's key.

    Every write from Graph goes through ``directory_user_upsert_from_graph`` so that fields a
    privacy correction has locked are never overwritten by a later sync.
    """

    # Every index is paid by every insert of a first sync (ten thousand rows). So no single-column index
    # where a query always filters by organisation first: the organisation's own (TenantModel's) is the
    # leading column of the uniqueness constraint, and the listing order is the partial index in Meta.
    organization = models.ForeignKey(settings.TENANT_MODEL, on_delete=models.CASCADE, related_name="+",
                                     db_index=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # The Entra object id names a person in the customer's tenant: encrypted like the rest, found (by the
    # sync, by the user actions) through its keyed index, which the uniqueness constraint covers.
    graph_id = EncryptedUUIDField()
    graph_id_index = UUIDIndexField(source="graph_id", purpose=GRAPH_ID_INDEX, db_index=False)
    display_name = EncryptedCharField(max_length=256, blank=True)
    user_principal_name = EncryptedCharField(max_length=256)
    # Indexed in Meta (plain b-trees): as db_index fields PostgreSQL also got a varchar_pattern_ops index each,
    # for LIKE on an HMAC, which nothing asks; each index is paid by every insert of a sync.
    upn_index = BlindIndexField(source="user_principal_name", purpose=UPN_INDEX, db_index=False)
    mail = EncryptedCharField(max_length=256, blank=True, null=True)
    mail_index = BlindIndexField(source="mail", purpose=MAIL_INDEX, db_index=False)
    job_title = EncryptedCharField(max_length=256, blank=True, null=True)
    department = EncryptedCharField(max_length=256, blank=True, null=True)
    usage_location = EncryptedCharField(max_length=2, blank=True, null=True)
    # Not encrypted, because reports filter on them; classified as personal below.
    has_usage_location = models.BooleanField(default=False)
    account_enabled = models.BooleanField(default=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)
    # Keyed hash of the Graph payload: an unchanged user costs no decryption and no write.
    source_hash = models.CharField(max_length=64, blank=True)
    # The last sync that wrote this row. An unchanged user is not written, so this is not "last listed":
    # the sync finds users Graph stopped listing by the ids it saw (services/directory/sync.py).
    last_seen_sync = models.ForeignKey(
        DirectorySync, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "graph_id_index"], name="directory_user_graph_id_unique")
        ]
        indexes = [
            # Lookups by address, in one organisation or across those in scope (a privacy request's subject). A
            # keyed hash names about one row, so no organisation column in front: it would only be a second
            # index for every insert of a sync to maintain.
            models.Index(fields=["upn_index"], name="directory_user_upn_index_idx"),
            models.Index(fields=["mail_index"], name="directory_user_mail_index_idx"),
            # The directory's listing order (API and pages): a page is read straight off it, no sort. It carries
            # updated_at too, so the directory search's "has anything changed?" check (count and newest
            # updated_at) is answered from it alone, without an index of its own.
            models.Index(fields=["organization", "created_at", "id"], include=["updated_at"],
                         condition=models.Q(removed_at__isnull=True), name="directory_user_listing_idx"),
            # The inactive users (the overview's reclaimable licenses, the reclaim report, the users page's
            # "inactive" filter): usually few, found without reading the whole directory. Not partial: the
            # planner keeps statistics of an index's expression only for a whole-table index, and without them
            # guessed a third of the directory inactive and read all of it.
            models.Index(F("organization"), last_active(), name="directory_user_activity_idx"),
        ]

    def __str__(self):
        return self.display_name or self.user_principal_name


declare(
    DirectoryUser,
    subject=Subject.DIRECTORY_USER,
    subject_lookup="pk",
    personal={
        "graph_id": Personal(Category.IDENTITY, Retention.TENANT_LINK),
        "graph_id_index": Personal(Category.IDENTITY, Retention.TENANT_LINK),
        "display_name": Personal(Category.IDENTITY, Retention.TENANT_LINK),
        "user_principal_name": Personal(Category.IDENTITY, Retention.TENANT_LINK),
        "upn_index": Personal(Category.IDENTITY, Retention.TENANT_LINK),
        "mail": Personal(Category.CONTACT, Retention.TENANT_LINK),
        "mail_index": Personal(Category.CONTACT, Retention.TENANT_LINK),
        "job_title": Personal(Category.IDENTITY, Retention.TENANT_LINK),
        "department": Personal(Category.IDENTITY, Retention.TENANT_LINK),
        "usage_location": Personal(Category.IDENTITY, Retention.TENANT_LINK),
        "has_usage_location": Personal(Category.IDENTITY, Retention.TENANT_LINK),
        "account_enabled": Personal(Category.IDENTITY, Retention.TENANT_LINK),
        "last_sign_in_at": Personal(Category.TECHNICAL_LOG, Retention.TENANT_LINK),
        "source_hash": Personal(Category.IDENTITY, Retention.TENANT_LINK),
    },
    not_personal=["last_seen_sync", "removed_at"],
)


def graph_id_index_of(graph_id) -> str | None:
    """The stored index of an Entra object id (``UUID`` or text): look a user up by ``graph_id_index``."""
    return DirectoryUser._meta.get_field("graph_id_index").index_of(graph_id)
