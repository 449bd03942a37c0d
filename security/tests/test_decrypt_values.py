"""Reports decrypt rows read as values, without model instances (``EncryptedField.decrypt_values``): the same
plaintext as through the instance for every kind of key scope, and the same refusal when a ciphertext is
paired with another row."""

from __future__ import annotations

import datetime

import pytest

from accounts.models import Invitation, Organization, SignInEvent, TOTPDevice, User
from accounts.tests.factories import MembershipFactory, TOTPDeviceFactory
from core.crypto import DecryptionError
from core.tenancy import tenant_context

pytestmark = pytest.mark.django_db


def _values(model, pk, field) -> dict:
    return model.objects.filter(pk=pk).values(field.attname, *field.binding_attnames).get()


def test_values_decrypt_as_the_instance_does_for_every_key_scope():
    membership = MembershipFactory()
    user, org = membership.user, membership.organization
    device = TOTPDeviceFactory(user=user)
    event = SignInEvent.objects.create(user=user, occurred_at=datetime.datetime(2024, 5, 1, 9, tzinfo=datetime.UTC),
                                       succeeded=True, factor="totp", ip_address="203.0.113.5", user_agent="Firefox")
    with tenant_context(org):
        invitation = Invitation.objects.create(organization=org, email="guest@example.org", role="viewer",
                                               token_hash="h" * 64,
                                               expires_at=datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC))
        cases = [
            (User, user.pk, "email"),  # self
            (Organization, org.pk, "legal_name"),  # self_org
            (TOTPDevice, device.pk, "key"),  # field:user_id
            (SignInEvent, event.pk, "ip_address"),  # system key, bound to the row's time
            (SignInEvent, event.pk, "user_agent"),
            (Invitation, invitation.pk, "email"),  # organization
        ]
        for model, pk, name in cases:
            field = model._meta.get_field(name)
            values = _values(model, pk, field)
            assert field.decrypt_values(values[field.attname], values) == getattr(model.objects.get(pk=pk), name)


def test_a_ciphertext_paired_with_another_row_is_refused():
    user, other = MembershipFactory().user, MembershipFactory().user
    field = User._meta.get_field("email")
    values = _values(User, user.pk, field)
    with pytest.raises(DecryptionError):
        field.decrypt_values(values["email"], {**values, "id": other.pk})
    when = datetime.datetime(2024, 5, 1, 9, tzinfo=datetime.UTC)
    event = SignInEvent.objects.create(user=user, occurred_at=when, succeeded=True, factor="totp",
                                       ip_address="203.0.113.5")
    field = SignInEvent._meta.get_field("ip_address")
    values = _values(SignInEvent, event.pk, field)
    with pytest.raises(DecryptionError):
        field.decrypt_values(values["ip_address"], {**values, "occurred_at": when + datetime.timedelta(seconds=1)})
