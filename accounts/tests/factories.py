"""factory_boy factories for accounts. Other apps' tests build on these."""

from datetime import timedelta

import factory
from django.utils import timezone
from django_otp.util import random_hex

from accounts.models import Membership, Organization, RecoveryCodeDevice, StaffGrant, StaffRole, TOTPDevice, User
from accounts.roles import Role

DEFAULT_PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Sequence(lambda n: f"Test User {n}")
    email_verified_at = factory.LazyFunction(timezone.now)
    is_active = True

    @factory.post_generation
    def password(obj, create, extracted, **kwargs):
        obj.set_password(extracted or DEFAULT_PASSWORD)
        if create:
            obj.save(update_fields=["password"])


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    slug = factory.Sequence(lambda n: f"org-{n}")
    legal_name = factory.Sequence(lambda n: f"Example Org {n} Ltd")
    country = "US"
    time_zone = "UTC"


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Role.OWNER


class TOTPDeviceFactory(factory.django.DjangoModelFactory):
    """A confirmed authenticator with a random encrypted secret."""

    class Meta:
        model = TOTPDevice

    user = factory.SubFactory(UserFactory)
    name = "Authenticator app"
    confirmed = True
    key = factory.LazyFunction(lambda: random_hex(20))


class RecoveryCodeDeviceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RecoveryCodeDevice

    user = factory.SubFactory(UserFactory)
    name = "Recovery codes"
    confirmed = True


class StaffGrantFactory(factory.django.DjangoModelFactory):
    """An active grant, started an hour ago, ending in a day (override ``roles``, ``expires_at``)."""

    class Meta:
        model = StaffGrant

    organization = factory.SubFactory(OrganizationFactory)
    staff = factory.SubFactory(UserFactory, is_staff=True)
    roles = factory.LazyFunction(lambda: [StaffRole.SUPPORT_READER])
    status = StaffGrant.Status.ACTIVE
    starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=1))
    justification = "Ticket 1234: the customer asked for help"
    requested_by = factory.SelfAttribute("staff")
