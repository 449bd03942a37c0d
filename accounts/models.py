import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from portal.models import BaseModel, TenantModel
from portal.roles import Role
from privacy.registry import Category, Personal, Retention, Subject, declare
from security.crypto import blind_index
from security.fields import BlindIndexField, EncryptedCharField, EncryptedJSONField

EMAIL_INDEX = "user-email"


class UserManager(BaseUserManager):
    use_in_migrations = True

    def get_by_natural_key(self, username):
        return self.get(email_index=blind_index(EMAIL_INDEX, username))

    def get_by_email(self, email: str):
        return self.filter(email_index=blind_index(EMAIL_INDEX, email)).first()

    def create_user(self, email, password=None, **extra):
        user = self.model(email=self.normalize_email(email).strip(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        extra.setdefault("email_verified_at", timezone.now())
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in: a customer admin or reseller staff. Email is the login.

    Personal fields are encrypted under the person's own data key, so erasing the
    key (crypto-shredding) makes every copy unreadable, backups included.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = EncryptedCharField(max_length=254, key_scope="self")
    email_index = BlindIndexField(source="email", purpose=EMAIL_INDEX, unique=True)
    full_name = EncryptedCharField(max_length=150, blank=True, key_scope="self")
    job_title = EncryptedCharField(max_length=150, blank=True, key_scope="self")
    email_verified_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        db_table = "accounts_user"

    def __str__(self):
        return self.full_name or self.email

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None


declare(
    User,
    subject=Subject.PORTAL_USER,
    subject_lookup="pk",
    personal={
        "email": Personal(Category.IDENTITY),
        "email_index": Personal(Category.IDENTITY),
        "full_name": Personal(Category.IDENTITY),
        "job_title": Personal(Category.IDENTITY),
        "password": Personal(Category.SECURITY),
        "last_login": Personal(Category.SECURITY),
    },
    not_personal=[
        "email_verified_at",
        "is_active",
        "is_staff",
        "is_superuser",
        "date_joined",
        "groups",
        "user_permissions",
    ],
)


class Organization(BaseModel):
    """A customer business: the tenant. Everything tenant-owned points here."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        CLOSED = "closed", "Closed"

    slug = models.SlugField(max_length=60, unique=True)
    legal_name = models.CharField(max_length=200)
    business_name = models.CharField(max_length=200, blank=True)
    country = models.CharField(
        max_length=2, validators=[RegexValidator(r"^[A-Z]{2}$", "Use a two-letter ISO country code.")]
    )
    time_zone = models.CharField(max_length=64, default="UTC")
    tax_id = EncryptedCharField(max_length=64, blank=True, key_scope="self_org")
    billing_address = EncryptedJSONField(null=True, blank=True, key_scope="self_org")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)

    class Meta:
        ordering = ["legal_name"]

    def __str__(self):
        return self.business_name or self.legal_name

    @property
    def display_name(self) -> str:
        return self.business_name or self.legal_name


declare(
    Organization,
    subject=Subject.ORGANIZATION,
    subject_lookup="pk",
    personal={
        "tax_id": Personal(Category.BILLING, Retention.ACTIVE_PLUS_LEGAL),
        "billing_address": Personal(Category.BILLING, Retention.ACTIVE_PLUS_LEGAL),
    },
    not_personal=["slug", "legal_name", "business_name", "country", "time_zone", "status"],
)


class MembershipQuerySet(models.QuerySet):
    def for_user(self, user):
        return self.filter(user=user, organization__status=Organization.Status.ACTIVE)


class Membership(BaseModel):
    """A user's role in one organisation. This row defines tenancy, so it is scoped by user."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="one_membership_per_org")]

    def __str__(self):
        return f"{self.user} @ {self.organization} ({self.get_role_display()})"


declare(Membership, subject=Subject.PORTAL_USER, subject_lookup="user", not_personal=["user", "role"])


class MicrosoftTenant(TenantModel):
    """The link between an organisation and its Microsoft (Entra ID) tenant."""

    class RelationshipStatus(models.TextChoices):
        NOT_LINKED = "not_linked", "Not linked"
        PENDING = "pending", "Pending approval"
        ACTIVE = "active", "Active"
        EXPIRING = "expiring", "Expiring"
        EXPIRED = "expired", "Expired"

    tenant_id = models.UUIDField(null=True, blank=True)
    partner_customer_id = models.CharField(max_length=64, blank=True)
    primary_domain = models.CharField(max_length=253, blank=True)
    verified_domains = models.JSONField(default=list, blank=True)
    relationship_status = models.CharField(
        max_length=16, choices=RelationshipStatus.choices, default=RelationshipStatus.NOT_LINKED
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="one_microsoft_tenant_per_org"),
            models.UniqueConstraint(fields=["tenant_id"], name="microsoft_tenant_linked_once"),
        ]

    def __str__(self):
        return self.primary_domain or str(self.tenant_id or "unlinked")


declare(
    MicrosoftTenant,
    subject=Subject.ORGANIZATION,
    subject_lookup="organization",
    personal={
        "tenant_id": Personal(Category.TENANT, Retention.TENANT_LINK),
        "partner_customer_id": Personal(Category.TENANT, Retention.TENANT_LINK),
        "primary_domain": Personal(Category.TENANT, Retention.TENANT_LINK),
        "verified_domains": Personal(Category.TENANT, Retention.TENANT_LINK),
    },
    not_personal=["relationship_status"],
)


class ApiKey(TenantModel):
    """An organisation-scoped API key. Only a hash of the secret is stored; the prefix identifies it."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    role = models.CharField(max_length=20, choices=Role.choices)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


declare(
    ApiKey,
    not_personal=["name", "prefix", "secret_hash", "role", "expires_at", "last_used_at", "revoked_at", "created_by"],
)
