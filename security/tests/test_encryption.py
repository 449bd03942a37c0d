import base64
import datetime
import uuid
from decimal import Decimal

import pytest
from django.core.exceptions import FieldError
from django.db import connection

from accounts.models import Organization, User
from core.audit import Actor
from core.crypto import DecryptionError, KeyScope, keyring
from core.fields import Ciphertext
from core.keys import data_key_destroy
from core.models import DataKey

pytestmark = pytest.mark.django_db


def stored(model, pk, field):
    return model.objects.filter(pk=pk).values_list(field, flat=True).get()


def put_raw(model, pk, **values):
    model.objects.filter(pk=pk).update(**{k: Ciphertext(v) for k, v in values.items()})


def database_dump_text() -> str:
    """Everything the database holds, as text: what a stolen dump or backup would reveal."""
    connection.ensure_connection()
    if connection.vendor == "sqlite":
        return "\n".join(connection.connection.iterdump())
    lines = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        )
        for (table,) in cursor.fetchall():
            cursor.execute(f"SELECT t::text FROM {connection.ops.quote_name(table)} AS t")
            lines.extend(row[0] for row in cursor.fetchall())
    return "\n".join(lines)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("note", "A long note\nwith lines and ünïcödé ✓"),
        ("note", ""),
        ("name", "Ada"),
        ("name", ""),
        ("data", {"nested": {"list": [1, 2.5, None, True]}, "s": "x"}),
        ("data", {}),
        ("data", []),
        ("data", 0),
        ("born", datetime.date(1815, 12, 10)),
        ("amount", Decimal("1234.5600")),
        ("amount", Decimal("0")),
        ("amount", 0),
    ],
)
def test_round_trip_including_falsy_values(vault, org_a, field, value):
    row = vault.objects.create(organization=org_a, **{field: value})
    loaded = vault.objects.get(pk=row.pk)
    assert getattr(loaded, field) == value
    assert type(getattr(loaded, field)) is (Decimal if field == "amount" else type(value))
    assert stored(vault, row.pk, field).startswith("v1:")


def test_none_stays_null_and_isnull_lookup_works(vault, org_a):
    row = vault.objects.create(organization=org_a, note=None, name="x")
    assert stored(vault, row.pk, "note") is None
    assert vault.objects.get(pk=row.pk).note is None
    assert list(vault.objects.filter(note__isnull=True)) == [row]
    assert not vault.objects.filter(name__isnull=True).exists()


def test_same_plaintext_encrypts_differently_each_time(vault, org_a):
    one = vault.objects.create(organization=org_a, name="same")
    two = vault.objects.create(organization=org_a, name="same")
    assert stored(vault, one.pk, "name") != stored(vault, two.pk, "name")


def test_database_dump_contains_no_plaintext(vault, org_a):
    canaries = {
        "note": "canary-note-5b7e0c",
        "name": "canary-name-91d2",
        "data": {"canary_json_key_3f1": "canary-json-value-8a2"},
        "born": datetime.date(1903, 4, 5),
        "amount": Decimal("271828.1828"),
    }
    subject = uuid.uuid4()
    vault.objects.create(organization=org_a, subject_id=subject, secret="canary-secret-77c4", **canaries)
    User.objects.create_user("Canary.Person@Example.org", "a long password 123", full_name="Canary Fullname Qz")
    org = Organization.objects.create(
        slug="canary-org", legal_name="Canary Org", country="DE", tax_id="DE999888777",
        billing_address={"street": "Canarystraße 12"},
    )
    assert Organization.objects.get(pk=org.pk).tax_id == "DE999888777"

    dump = database_dump_text()
    assert "canary-org" in dump  # the dump really holds our rows
    for plaintext in (
        "canary-note-5b7e0c", "canary-name-91d2", "canary_json_key_3f1", "canary-json-value-8a2",
        "1903-04-05", "271828.1828", "canary-secret-77c4", "Canary.Person", "canary.person",
        "Canary Fullname Qz", "DE999888777", "Canarystraße",
    ):
        assert plaintext not in dump, plaintext


def test_flipped_byte_fails_to_decrypt(vault, org_a):
    row = vault.objects.create(organization=org_a, note="tamper me")
    prefix, payload = stored(vault, row.pk, "note").rsplit(":", 1)
    blob = bytearray(base64.b64decode(payload))
    blob[len(blob) // 2] ^= 0x01
    put_raw(vault, row.pk, note=f"{prefix}:{base64.b64encode(bytes(blob)).decode()}")
    with pytest.raises(DecryptionError, match="altered"):
        vault.objects.get(pk=row.pk).note


def test_ciphertext_moved_to_another_row_of_same_org_fails(vault, org_a):
    source = vault.objects.create(organization=org_a, note="belongs to source")
    other = vault.objects.create(organization=org_a, note="other")
    put_raw(vault, other.pk, note=stored(vault, source.pk, "note"))
    with pytest.raises(DecryptionError):
        vault.objects.get(pk=other.pk).note
    assert vault.objects.get(pk=source.pk).note == "belongs to source"


def test_ciphertext_moved_to_another_field_of_same_row_fails(vault, org_a):
    row = vault.objects.create(organization=org_a, note="in note", name="in name")
    put_raw(vault, row.pk, name=stored(vault, row.pk, "note"))
    with pytest.raises(DecryptionError):
        vault.objects.get(pk=row.pk).name


def test_ciphertext_moved_to_another_org_fails(vault, org_a, org_b):
    source = vault.objects.create(organization=org_a, note="org a secret")
    target = vault.objects.create(organization=org_b, note="org b")
    put_raw(vault, target.pk, note=stored(vault, source.pk, "note"))
    with pytest.raises(DecryptionError):
        vault.objects.get(pk=target.pk).note


def test_unknown_key_id_fails(vault, org_a):
    row = vault.objects.create(organization=org_a, note="x")
    version, _, payload = stored(vault, row.pk, "note").split(":", 2)
    put_raw(vault, row.pk, note=f"{version}:{uuid.uuid4().hex}:{payload}")
    with pytest.raises(DecryptionError, match="does not exist"):
        vault.objects.get(pk=row.pk).note


@pytest.mark.parametrize("garbage", ["not a ciphertext", "v9:abc:def", "v1:nothex:AAAA", "v1:" + "0" * 32 + ":!!"])
def test_malformed_ciphertext_fails_loudly(vault, org_a, garbage):
    row = vault.objects.create(organization=org_a, note="x")
    put_raw(vault, row.pk, note=garbage)
    with pytest.raises(DecryptionError):
        vault.objects.get(pk=row.pk).note


@pytest.mark.parametrize("lookup", ["note", "note__icontains", "note__startswith", "name__in", "amount__gt"])
def test_filtering_on_encrypted_field_raises(vault, lookup):
    value = ["x"] if lookup.endswith("__in") else "x"
    with pytest.raises(FieldError):
        vault.objects.filter(**{lookup: value})


def test_raw_update_with_plaintext_is_refused(vault, org_a):
    row = vault.objects.create(organization=org_a, note="x")
    with pytest.raises(FieldError):
        vault.objects.filter(pk=row.pk).update(note="plaintext straight to the column")


def test_destroyed_data_key_gives_clear_error(vault, org_a):
    subject = uuid.uuid4()
    row = vault.objects.create(organization=org_a, subject_id=subject, secret="shred me", note="org data survives")
    destroyed = data_key_destroy(scope=KeyScope("subject", str(subject)), actor=Actor.system("test"))
    assert len(destroyed) == 1
    key = DataKey.objects.get(pk=destroyed[0])
    assert key.status == DataKey.Status.DESTROYED and key.wrapped_key is None

    loaded = vault.objects.get(pk=row.pk)
    with pytest.raises(DecryptionError, match="destroyed"):
        loaded.secret
    assert loaded.note == "org data survives"
    keyring.clear()  # a fresh process cannot recover it either
    with pytest.raises(DecryptionError, match="crypto-shredded"):
        vault.objects.get(pk=row.pk).secret


def test_deferred_field_still_decrypts(vault, org_a):
    row = vault.objects.create(organization=org_a, note="deferred", amount=Decimal("9.99"))
    only_id = vault.objects.only("id").get(pk=row.pk)
    assert only_id.note == "deferred"
    assert only_id.amount == Decimal("9.99")
    deferred = vault.objects.defer("note").get(pk=row.pk)
    assert deferred.note == "deferred"


def test_refresh_from_db_picks_up_changes(vault, org_a):
    row = vault.objects.create(organization=org_a, note="before", data={"v": 1})
    copy = vault.objects.get(pk=row.pk)
    assert copy.note == "before"
    row.note = "after"
    row.data = {"v": 2}
    row.save()
    copy.refresh_from_db()
    assert (copy.note, copy.data) == ("after", {"v": 2})
    copy.refresh_from_db(fields=["note"])
    assert copy.note == "after"


def test_unchanged_values_keep_their_ciphertext_on_save(vault, org_a):
    row = vault.objects.create(organization=org_a, note="stable", name="n")
    before = stored(vault, row.pk, "note")
    loaded = vault.objects.get(pk=row.pk)
    loaded.name = "changed"
    loaded.save()
    assert stored(vault, row.pk, "note") == before
    assert stored(vault, row.pk, "name") != before


def test_blind_index_lookup_is_case_insensitive_for_email(db):
    user = User.objects.create_user("Grace.Hopper@Navy.example", "a long password 123")
    assert User.objects.get_by_email("grace.hopper@navy.example").pk == user.pk
    assert User.objects.get_by_email("  GRACE.HOPPER@NAVY.EXAMPLE ").pk == user.pk
    assert User.objects.get_by_email("grace.hopper@navy.example.org") is None
    assert User.objects.get(email_index=user.email_index).email == "Grace.Hopper@navy.example"


def test_one_data_key_per_org_and_per_subject(vault, org_a, org_b):
    subject = uuid.uuid4()
    vault.objects.create(organization=org_a, note="a1", subject_id=subject, secret="s")
    vault.objects.create(organization=org_a, note="a2")
    vault.objects.create(organization=org_b, note="b1")
    keys = DataKey.objects.filter(status=DataKey.Status.ACTIVE)
    scopes = set(keys.values_list("scope_kind", "scope_id"))
    assert {("org", str(org_a.pk)), ("org", str(org_b.pk)), ("subject", str(subject))} <= scopes
    assert keys.filter(scope_kind="org", scope_id=str(org_a.pk)).count() == 1


def test_field_associated_data_matches_the_documented_format(vault, org_a):
    from core.crypto import associated_data

    row = vault(organization=org_a, subject_id=uuid.uuid4())
    for name in ("note", "secret"):
        field = vault._meta.get_field(name)
        scope = field.scope_for(row)
        assert field._aad(row) == associated_data("security.vault", name, scope, row.pk)
