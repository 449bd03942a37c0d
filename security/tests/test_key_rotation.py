import base64
import datetime
import os
import uuid
from decimal import Decimal
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import override_settings

from accounts.models import Organization, User
from core.crypto import DecryptionError, keyring
from core.models import AuditEvent, DataKey

pytestmark = pytest.mark.django_db

ENCRYPTED = ("note", "name", "data", "born", "amount", "secret")


def new_master_key(kid: str) -> str:
    return f"{kid}:{base64.b64encode(os.urandom(32)).decode()}"


def run(command, **options) -> str:
    out = StringIO()
    call_command(command, stdout=out, stderr=out, **options)
    return out.getvalue()


def snapshot(vault, users):
    """Every plaintext and every stored ciphertext, read fresh from the database."""
    keyring.clear()
    plain, raw = {}, {}
    for row in vault.objects.order_by("pk"):
        plain[row.pk] = tuple(getattr(row, f) for f in ENCRYPTED)
        raw[row.pk] = tuple(row.__dict__.get(f"_{f}_ciphertext") for f in ENCRYPTED)
    for user in User.objects.filter(pk__in=[u.pk for u in users]):
        plain[user.pk] = (user.email, user.full_name)
        raw[user.pk] = (user._email_ciphertext, user._full_name_ciphertext)
    return plain, raw


@pytest.fixture
def dataset(vault, org_a, org_b):
    for org in (org_a, org_b):
        for i in range(3):
            vault.objects.create(
                organization=org,
                subject_id=uuid.uuid4(),
                note=f"note {org.slug} {i}",
                name="",
                data={"i": i, "tags": []},
                born=datetime.date(1990, 1, i + 1),
                amount=Decimal(i),
                secret=f"secret {i}",
            )
    users = [
        User.objects.create_user(f"person{i}@example.com", "a long password 123", full_name=f"P {i}") for i in range(2)
    ]
    org_a.tax_id = "FR123"
    org_a.save()
    return users


def test_master_key_rotation_then_reencrypt_loses_nothing(vault, dataset, org_a):
    users = dataset
    before_plain, before_raw = snapshot(vault, users)
    old_keys = settings.FIELD_ENCRYPTION_MASTER_KEYS
    rotated_keys = f"{new_master_key('k2')},{old_keys}"

    with override_settings(FIELD_ENCRYPTION_MASTER_KEYS=rotated_keys):
        total = DataKey.objects.count()
        out = run("rotate_master_key", batch_size=2)
        assert f"data keys: {total}/{total}" in out
        assert set(DataKey.objects.values_list("master_kid", flat=True)) == {"k2"}
        assert "0 data key(s) to re-wrap" in run("rotate_master_key")  # idempotent
        assert AuditEvent.unscoped_objects.filter(action="data_key.rewrapped").exists()

        out = run("reencrypt_fields", batch_size=2)
        assert "security.Vault: 6/6" in out
        after_plain, after_raw = snapshot(vault, users)
        assert after_plain == before_plain
        for pk, ciphertexts in before_raw.items():
            for old, new in zip(ciphertexts, after_raw[pk], strict=True):
                assert old is None or old != new
        assert DataKey.objects.filter(status=DataKey.Status.RETIRED).count() >= 2 + 6 + 2
        assert "Re-encrypted 0 value(s)" in run("reencrypt_fields", resume=True)

    # The operator drops the old master key: everything still decrypts, nothing is lost.
    with override_settings(FIELD_ENCRYPTION_MASTER_KEYS=rotated_keys.split(",")[0]):
        final_plain, _ = snapshot(vault, users)
        assert final_plain == before_plain
        assert Organization.objects.get(pk=org_a.pk).tax_id == "FR123"


def test_retired_keys_still_decrypt_before_reencryption(vault, dataset, org_a):
    before_plain, _ = snapshot(vault, dataset)
    run("reencrypt_fields", model="security.Vault", scope=f"org:{org_a.pk}")
    retired = DataKey.objects.get(scope_kind="org", scope_id=str(org_a.pk), status=DataKey.Status.RETIRED)
    active = DataKey.objects.get(scope_kind="org", scope_id=str(org_a.pk), status=DataKey.Status.ACTIVE)
    assert retired.pk != active.pk
    plain, raw = snapshot(vault, dataset)
    assert plain == before_plain
    a_rows = vault.objects.filter(organization=org_a).values_list("pk", flat=True)
    for pk, ciphertexts in raw.items():
        key_ids = {c.split(":")[1] for c in ciphertexts[:5]}
        if pk in a_rows:
            assert key_ids == {active.pk.hex}
        elif pk in plain and len(ciphertexts) == 6:
            assert retired.pk.hex not in key_ids


def test_removing_old_master_key_too_early_is_a_clear_error(vault, dataset):
    with override_settings(FIELD_ENCRYPTION_MASTER_KEYS=new_master_key("k3")):
        keyring.clear()
        with pytest.raises(DecryptionError, match="not configured"):
            vault.objects.first().note
        with pytest.raises(CommandError, match="Keep the old master key"):
            run("rotate_master_key")


def test_reencrypt_rejects_bad_arguments(db):
    with pytest.raises(CommandError):
        run("reencrypt_fields", model="accounts.Membership")
    with pytest.raises(CommandError):
        run("reencrypt_fields", scope="team:1")
    with pytest.raises(CommandError):
        run("reencrypt_fields", batch_size=0)


def test_destroy_data_key_command_crypto_shreds_a_subject(vault, org_a):
    subject = uuid.uuid4()
    row = vault.objects.create(organization=org_a, subject_id=subject, secret="gone", note="kept")
    out = run("destroy_data_key", scope=f"subject:{subject}")
    assert "Destroyed 1 data key(s)" in out
    key = DataKey.objects.get(scope_kind="subject", scope_id=str(subject))
    assert (key.status, key.wrapped_key) == (DataKey.Status.DESTROYED, None)
    event = AuditEvent.unscoped_objects.get(action="data_key.destroyed")
    assert event.metadata["destroyed"] == [str(key.pk)]
    loaded = vault.objects.get(pk=row.pk)
    assert loaded.note == "kept"
    with pytest.raises(DecryptionError, match="destroyed"):
        loaded.secret
    assert "nothing to destroy" in run("destroy_data_key", scope=f"subject:{subject}")
    # Later writes for the same subject get a fresh key; the shredded values stay gone.
    vault.objects.create(organization=org_a, subject_id=subject, secret="new")
    with pytest.raises(DecryptionError):
        vault.objects.get(pk=row.pk).secret
