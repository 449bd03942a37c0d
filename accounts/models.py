import time
import uuid
from base64 import b32encode
from binascii import unhexlify
from urllib.parse import quote, urlencode

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django_otp.models import Device, ThrottlingMixin
from django_otp.oath import TOTP

from accounts.roles import Role
from core.crypto import blind_index
from core.fields import (
    BlindIndexField,
    EncryptedCharField,
    EncryptedIPAddressField,
    EncryptedJSONField,
    EncryptedUUIDField,
    IPAddressIndexField,
    NetworkIndexField,
)
from core.models import BaseModel, TenantModel
from core.registry import Category, Personal, Retention, Subject, declare
from core.tenancy import person_context

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
        # Users have row-level security: a new account is written in its own person's context (decision 043).
        with person_context(user):
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
    # The privacy notice version in force when the account was created (see privacy/notice.py).
    privacy_notice_version = models.CharField(max_length=32, blank=True, default="")

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
        "password": Personal(Category.SECURITY, secret=True),
        "last_login": Personal(Category.SECURITY),
    },
    not_personal=[
        "email_verified_at",
        "is_active",
        "is_staff",
        "is_superuser",
        "date_joined",
        "privacy_notice_version",
        "groups",
        "user_permissions",
    ],
)


ORGANIZATION_SLUG_INDEX = "organization-slug"  # blind-index purpose of previous_slug_index


class Organization(BaseModel):
    """A customer business: the tenant. Everything tenant-owned points here."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        CLOSED = "closed", "Closed"

    # Neutral (``org-`` and random characters), never made from the name: decision 041.
    slug = models.SlugField(max_length=60, unique=True)
    # The keyed hash of the slug an organisation had when slugs were still made from names, so its old
    # links redirect its members to the new one and no new slug can take it over. Not the slug itself: that
    # spelled the name.
    previous_slug_index = models.CharField(max_length=64, null=True, blank=True, unique=True, editable=False)
    legal_name = EncryptedCharField(max_length=200, key_scope="self_org")
    business_name = EncryptedCharField(max_length=200, blank=True, key_scope="self_org")
    country = models.CharField(
        max_length=2, validators=[RegexValidator(r"^[A-Z]{2}$", "Use a two-letter ISO country code.")]
    )
    time_zone = models.CharField(max_length=64, default="UTC")
    tax_id = EncryptedCharField(max_length=64, blank=True, key_scope="self_org")
    billing_address = EncryptedJSONField(null=True, blank=True, key_scope="self_org")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)

    class Meta:
        # Not by name: names are encrypted (and slugs are random: the order is stable, not alphabetical).
        ordering = ["slug"]

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
        "legal_name": Personal(Category.IDENTITY, Retention.ACTIVE_PLUS_LEGAL),
        "business_name": Personal(Category.IDENTITY, Retention.ACTIVE_PLUS_LEGAL),
        "tax_id": Personal(Category.BILLING, Retention.ACTIVE_PLUS_LEGAL),
        "billing_address": Personal(Category.BILLING, Retention.ACTIVE_PLUS_LEGAL),
        # A keyed hash of a slug that spelled the name: kept as long as the name.
        "previous_slug_index": Personal(Category.IDENTITY, Retention.ACTIVE_PLUS_LEGAL),
    },
    not_personal=["slug", "country", "time_zone", "status"],
)


class MembershipQuerySet(models.QuerySet):
    def for_user(self, user):
        return self.filter(user=user, organization__status=Organization.Status.ACTIVE)


class Membership(BaseModel):
    """A user's role in one organisation. This row defines tenancy: it is read by the person (their own, in their
    context or as the system role before any organisation is known) or by the organisation, in its context
    (row-level security, docs/decisions/044-row-level-security-on-tenancy.md)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="one_membership_per_org")]

    def __str__(self):
        return f"{self.user} @ {self.organization} ({self.get_role_display()})"


declare(Membership, subject=Subject.PORTAL_USER, subject_lookup="user", not_personal=["user", "role"])


TENANT_DOMAIN_INDEX = "tenant-domain"
TENANT_ID_INDEX = "microsoft-tenant-id"
PARTNER_CUSTOMER_ID_INDEX = "partner-customer-id"


class MicrosoftTenant(TenantModel):
    """The link between an organisation and its Microsoft (Entra ID) tenant."""

    class RelationshipStatus(models.TextChoices):
        NOT_LINKED = "not_linked", "Not linked"
        PENDING = "pending", "Pending approval"
        ACTIVE = "active", "Active"
        EXPIRING = "expiring", "Expiring"
        EXPIRED = "expired", "Expired"

    # Microsoft's ids for the customer: encrypted, found through their blind indexes.
    tenant_id = EncryptedUUIDField(null=True, blank=True)
    tenant_id_index = BlindIndexField(source="tenant_id", purpose=TENANT_ID_INDEX)
    partner_customer_id = EncryptedCharField(max_length=64, blank=True)
    partner_customer_id_index = BlindIndexField(source="partner_customer_id", purpose=PARTNER_CUSTOMER_ID_INDEX)
    primary_domain = EncryptedCharField(max_length=253, blank=True)
    primary_domain_index = BlindIndexField(source="primary_domain", purpose=TENANT_DOMAIN_INDEX)
    verified_domains = EncryptedJSONField(default=list, blank=True)
    relationship_status = models.CharField(
        max_length=16, choices=RelationshipStatus.choices, default=RelationshipStatus.NOT_LINKED
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="one_microsoft_tenant_per_org"),
            models.UniqueConstraint(fields=["tenant_id_index"], name="microsoft_tenant_linked_once"),
        ]

    def __str__(self):
        return self.primary_domain or str(self.tenant_id or "unlinked")


declare(
    MicrosoftTenant,
    subject=Subject.ORGANIZATION,
    subject_lookup="organization",
    personal={
        "tenant_id": Personal(Category.TENANT, Retention.TENANT_LINK),
        "tenant_id_index": Personal(Category.TENANT, Retention.TENANT_LINK),
        "partner_customer_id": Personal(Category.TENANT, Retention.TENANT_LINK),
        "partner_customer_id_index": Personal(Category.TENANT, Retention.TENANT_LINK),
        "primary_domain": Personal(Category.TENANT, Retention.TENANT_LINK),
        "primary_domain_index": Personal(Category.TENANT, Retention.TENANT_LINK),
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


class TOTPDevice(ThrottlingMixin, Device):
    """An authenticator app. The shared secret is encrypted under the user's own data key.

    django-otp's own TOTPDevice stores the secret in plaintext, so it is not used.
    ``last_t`` is the time step of the last accepted code: a code cannot be used twice.
    """

    key = EncryptedCharField(max_length=80, null=True, blank=True, key_scope="field:user_id")
    step = models.PositiveSmallIntegerField(default=30)
    digits = models.PositiveSmallIntegerField(default=6)
    tolerance = models.PositiveSmallIntegerField(default=1)
    drift = models.SmallIntegerField(default=0)
    last_t = models.BigIntegerField(default=-1)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta(Device.Meta):
        verbose_name = "TOTP device"

    def save(self, *args, **kwargs):
        # The ciphertext's associated data binds it to the row id, which an auto id only
        # has after the insert: insert without the secret, then store it.
        if self.pk is None and self.key:
            secret = self.key
            self.key = None
            super().save(*args, **kwargs)
            self.key = secret
            super().save(update_fields=["key"])
            return
        super().save(*args, **kwargs)

    @property
    def bin_key(self) -> bytes:
        return unhexlify(self.key.encode())

    @property
    def base32_key(self) -> str:
        return b32encode(self.bin_key).decode("ascii").rstrip("=")

    def get_throttle_factor(self):
        return getattr(settings, "OTP_TOTP_THROTTLE_FACTOR", 1)

    def verify_token(self, token):
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        token = str(token).strip().replace(" ", "")
        verified = False
        if token.isdigit() and len(token) == self.digits:
            totp = TOTP(self.bin_key, self.step, 0, self.digits, self.drift)
            totp.time = time.time()
            verified = totp.verify(int(token), self.tolerance, self.last_t + 1)
            if verified:
                self.last_t = totp.t()
                self.drift = totp.drift
                self.last_used_at = timezone.now()
                self.throttle_reset(commit=False)
                self.save(update_fields=["last_t", "drift", "last_used_at", *THROTTLE_FIELDS])
        if not verified:
            self.throttle_increment(commit=True)
        return verified

    def is_replay(self, token) -> bool:
        """True when ``token`` is valid but for a time step already used: tells the user why it failed."""
        token = str(token).strip().replace(" ", "")
        if not (token.isdigit() and len(token) == self.digits) or self.last_t < 0:
            return False
        totp = TOTP(self.bin_key, self.step, 0, self.digits, self.drift)
        totp.time = time.time()
        return totp.verify(int(token), self.tolerance) and totp.t() <= self.last_t

    def config_url(self) -> str:
        issuer = settings.OTP_TOTP_ISSUER.replace(":", "")
        label = quote(f"{issuer}:{self.user.email}")
        params = urlencode({"secret": self.base32_key, "digits": self.digits, "period": self.step, "issuer": issuer})
        return f"otpauth://totp/{label}?{params}"


THROTTLE_FIELDS = ("throttling_failure_timestamp", "throttling_failure_count")

declare(
    TOTPDevice,
    subject=Subject.PORTAL_USER,
    subject_lookup="user",
    personal={"key": Personal(Category.SECURITY, secret=True), "last_used_at": Personal(Category.SECURITY)},
    not_personal=[
        "user",
        "name",
        "confirmed",
        "step",
        "digits",
        "tolerance",
        "drift",
        "last_t",
        *THROTTLE_FIELDS,
    ],
)


class RecoveryCodeDevice(ThrottlingMixin, Device):
    """One-time recovery codes. Only keyed hashes are stored; the codes are shown once."""

    code_hashes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta(Device.Meta):
        verbose_name = "recovery code set"

    def get_throttle_factor(self):
        return getattr(settings, "OTP_TOTP_THROTTLE_FACTOR", 1)

    def hash_code(self, code: str) -> str:
        normalised = "".join(ch for ch in str(code) if ch.isalnum()).lower()
        return blind_index(RECOVERY_CODE_INDEX, f"{self.user_id}:{normalised}")

    @property
    def remaining(self) -> int:
        return len(self.code_hashes)

    def verify_token(self, token):
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        digest = self.hash_code(token)
        if digest in self.code_hashes:
            self.code_hashes = [h for h in self.code_hashes if h != digest]
            self.last_used_at = timezone.now()
            self.throttle_reset(commit=False)
            self.save(update_fields=["code_hashes", "last_used_at", *THROTTLE_FIELDS])
            return True
        self.throttle_increment(commit=True)
        return False


RECOVERY_CODE_INDEX = "recovery-code"

declare(
    RecoveryCodeDevice,
    subject=Subject.PORTAL_USER,
    subject_lookup="user",
    personal={"code_hashes": Personal(Category.SECURITY, secret=True), "last_used_at": Personal(Category.SECURITY)},
    not_personal=["user", "name", "confirmed", *THROTTLE_FIELDS],
)


class UserSession(models.Model):
    """One signed-in browser session, so people can see and revoke them.

    The Django session key is stored encrypted (a revoke needs it to delete the session) and
    hashed (to find the current session): a database reader cannot hijack sessions. The address
    and browser are encrypted under the person's key; the address is found through its keyed
    indexes (``core.blind_index``).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="sessions")
    session_key = EncryptedCharField(max_length=64, key_scope="field:user_id")
    session_key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    ip_address = EncryptedIPAddressField(null=True, blank=True, key_scope="field:user_id")
    ip_index = IPAddressIndexField(source="ip_address")
    ip_network_index = NetworkIndexField(source="ip_address")
    user_agent = EncryptedCharField(max_length=300, blank=True, key_scope="field:user_id")

    class Meta:
        ordering = ["-last_seen_at"]

    def __str__(self):
        return f"session of {self.user_id} since {self.created_at:%Y-%m-%d %H:%M}"


declare(
    UserSession,
    subject=Subject.PORTAL_USER,
    subject_lookup="user",
    personal={
        "ip_address": Personal(Category.TECHNICAL_LOG, Retention.SECURITY_LOG),
        "ip_index": Personal(Category.TECHNICAL_LOG, Retention.SECURITY_LOG),
        "ip_network_index": Personal(Category.TECHNICAL_LOG, Retention.SECURITY_LOG),
        "user_agent": Personal(Category.TECHNICAL_LOG, Retention.SECURITY_LOG),
        "last_seen_at": Personal(Category.TECHNICAL_LOG, Retention.SECURITY_LOG),
        "session_key": Personal(Category.SECURITY, Retention.SECURITY_LOG, secret=True),
    },
    not_personal=["user", "session_key_hash"],
)


class Invitation(TenantModel):
    """An invitation to join an organisation. The link's secret is stored only as a hash.

    The invitee's email uses the same blind-index purpose as ``User.email_index`` so
    acceptance can check the signed-in user is the invited person without decrypting.
    """

    email = EncryptedCharField(max_length=254)
    email_index = BlindIndexField(source="email", purpose=EMAIL_INDEX)
    role = models.CharField(max_length=20, choices=Role.choices)
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "email_index"],
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="one_open_invitation_per_email",
            )
        ]

    def __str__(self):
        return f"Invitation ({self.get_role_display()})"

    @property
    def status(self) -> str:
        if self.accepted_at is not None:
            return "accepted"
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"

    @property
    def is_pending(self) -> bool:
        return self.status == "pending"


declare(
    Invitation,
    subject=Subject.ORGANIZATION,
    subject_lookup="organization",
    personal={
        "email": Personal(Category.CONTACT),
        "email_index": Personal(Category.CONTACT),
    },
    not_personal=["role", "invited_by", "token_hash", "expires_at", "accepted_at", "accepted_by", "revoked_at"],
)


SIGN_IN_KEY_SCOPE = "system:sign-in"
DEVICE_INDEX = "device-id"


class SignInEvent(models.Model):
    """Every sign-in attempt, successful or not, for the user's activity page and login monitoring.

    The attempted email is kept only as a blind index (the same purpose as the user's
    email index), so attempts against unknown addresses can be grouped without storing them.
    Address, browser and device id are encrypted under one sign-in key (an attempt may have no
    known person) and bound to the attempt's time, since the id is assigned on insert; the
    address and device are found through their keyed indexes (``core.blind_index``).
    """

    class Factor(models.TextChoices):
        PASSWORD = "password", "Password"
        TOTP = "totp", "Authenticator app"
        RECOVERY = "recovery", "Recovery code"
        WEBAUTHN = "webauthn", "Passkey"

    class Reason(models.TextChoices):
        NONE = "", "None"
        BAD_CREDENTIALS = "bad_credentials", "Wrong email or password"
        LOCKED_OUT = "locked_out", "Locked out after too many failures"
        INACTIVE = "inactive", "Account disabled"
        BAD_CODE = "bad_code", "Wrong or expired code"
        REPLAYED_CODE = "replayed_code", "Code already used"
        THROTTLED = "throttled", "Too many wrong codes"

    id = models.BigAutoField(primary_key=True)
    occurred_at = models.DateTimeField(db_index=True)
    user = models.ForeignKey(
        "accounts.User", on_delete=models.CASCADE, null=True, blank=True, related_name="sign_in_events"
    )
    email_index = models.CharField(max_length=64, blank=True, db_index=True)
    ip_address = EncryptedIPAddressField(null=True, blank=True, key_scope=SIGN_IN_KEY_SCOPE, row_field="occurred_at")
    ip_index = IPAddressIndexField(source="ip_address")
    ip_network_index = NetworkIndexField(source="ip_address")
    user_agent = EncryptedCharField(max_length=300, blank=True, key_scope=SIGN_IN_KEY_SCOPE, row_field="occurred_at")
    device_id = EncryptedCharField(max_length=64, blank=True, key_scope=SIGN_IN_KEY_SCOPE, row_field="occurred_at")
    device_index = BlindIndexField(source="device_id", purpose=DEVICE_INDEX)
    succeeded = models.BooleanField()
    factor = models.CharField(max_length=16, choices=Factor.choices)
    failure_reason = models.CharField(max_length=32, choices=Reason.choices, blank=True)

    class Meta:
        db_table = "security_signinevent"
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["user", "-occurred_at"])]

    def __str__(self):
        outcome = "ok" if self.succeeded else self.failure_reason or "failed"
        return f"sign-in {self.factor} {outcome} at {self.occurred_at:%Y-%m-%d %H:%M}"


declare(
    SignInEvent,
    subject=Subject.PORTAL_USER,
    subject_lookup="user",
    personal={
        "occurred_at": Personal(Category.SECURITY, Retention.SECURITY_LOG),
        "email_index": Personal(Category.SECURITY, Retention.SECURITY_LOG),
        "ip_address": Personal(Category.TECHNICAL_LOG, Retention.SECURITY_LOG),
        "ip_index": Personal(Category.TECHNICAL_LOG, Retention.SECURITY_LOG),
        "ip_network_index": Personal(Category.TECHNICAL_LOG, Retention.SECURITY_LOG),
        "user_agent": Personal(Category.TECHNICAL_LOG, Retention.SECURITY_LOG),
        "device_id": Personal(Category.TECHNICAL_LOG, Retention.SECURITY_LOG),
        "device_index": Personal(Category.TECHNICAL_LOG, Retention.SECURITY_LOG),
        "succeeded": Personal(Category.SECURITY, Retention.SECURITY_LOG),
        "factor": Personal(Category.SECURITY, Retention.SECURITY_LOG),
        "failure_reason": Personal(Category.SECURITY, Retention.SECURITY_LOG),
    },
    not_personal=["user"],
)


class StaffRole(models.TextChoices):
    """What a reseller staff member may do for one customer (modelled on Microsoft's GDAP roles)."""

    SUPPORT_READER = "support_reader", "Support reader"
    LICENSE_OPERATOR = "license_operator", "License operator"
    BILLING_OPERATOR = "billing_operator", "Billing operator"
    PRIVACY_OPERATOR = "privacy_operator", "Privacy operator"
    SECURITY_RESPONDER = "security_responder", "Security responder"


class StaffGrant(BaseModel):
    """One staff member's time-bound, role-scoped access to one customer organisation.

    Like Membership, this row defines tenancy (for staff): it is read by the staff member (their own, in their
    context or as the system role for the admin's check) or by the organisation, in its context (row-level
    security, decision 044). A grant gives access only while it is
    ``active`` and ``starts_at <= now < expires_at``; the admin checks that on every request
    (docs/decisions/021-staff-access-grants.md).
    """

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        ACTIVE = "active", "Active"
        REVOKED = "revoked", "Revoked"
        DENIED = "denied", "Denied"
        EXPIRED = "expired", "Expired"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="staff_grants")
    staff = models.ForeignKey(User, on_delete=models.CASCADE, related_name="staff_grants")
    roles = models.JSONField(default=list)  # StaffRole values
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.REQUESTED, db_index=True)
    starts_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    justification = EncryptedCharField(max_length=500)
    ticket_reference = models.CharField(max_length=64, blank=True)
    break_glass = models.BooleanField(default=False)
    requested_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    approved_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    auto_approved = models.BooleanField(default=False)
    ended_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    ended_at = models.DateTimeField(null=True, blank=True)
    reminders_sent = models.JSONField(default=list, blank=True)  # reminder labels already sent ("3d", "24h")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["staff", "status", "expires_at"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(expires_at__gt=models.F("starts_at")),
                                   name="staff_grant_ends_after_start"),
        ]

    def __str__(self):
        return f"{self.get_roles_display()} for {self.organization} until {self.expires_at:%Y-%m-%d %H:%M}"

    def get_roles_display(self) -> str:
        labels = dict(StaffRole.choices)
        return ", ".join(str(labels.get(role, role)) for role in self.roles)

    def is_effective(self, now=None) -> bool:
        now = now or timezone.now()
        return self.status == self.Status.ACTIVE and self.starts_at <= now < self.expires_at


declare(
    StaffGrant,
    subject=Subject.PORTAL_USER,
    subject_lookup="staff",
    personal={"justification": Personal(Category.SECURITY)},
    not_personal=["staff", "roles", "status", "starts_at", "expires_at", "ticket_reference", "break_glass",
                  "requested_by", "approved_by", "approved_at", "auto_approved", "ended_by", "ended_at",
                  "reminders_sent"],
)


class StaffAccessPolicy(TenantModel):
    """A customer's rule for reseller access requests: roles granted without asking, the rest wait for
    an owner's approval. No row means every request waits."""

    auto_approve_roles = models.JSONField(default=list, blank=True)  # StaffRole values

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization"], name="one_staff_access_policy_per_org")]

    def __str__(self):
        return f"reseller access policy of {self.organization_id}"


declare(StaffAccessPolicy, not_personal=["auto_approve_roles"])
