"""The encrypted fields on a model declared inside each test, with an in-memory key ring: no database.

What a row's ciphertext is bound to (the documented associated data, with the key scope each
``key_scope`` names), when a save keeps the stored ciphertext and the blind index, and what the
address and UUID fields store. The model is built in the test so that its field declarations run
there too (docs/mutation-testing.md).
"""

import datetime
import uuid

import pytest
from django.core.exceptions import FieldError, ValidationError
from django.db import models
from django.test.utils import isolate_apps

from core import crypto
from core.blind_index import IP_INDEX_PURPOSE, NETWORK_INDEX_PURPOSE, ip_index, network_index
from core.crypto import DecryptionError, KeyRing, KeyScope
from core.fields import (
    BlindIndexField,
    Ciphertext,
    EncryptedCharField,
    EncryptedIPAddressField,
    EncryptedJSONField,
    EncryptedTextField,
    EncryptedUUIDField,
    IPAddressIndexField,
    NetworkIndexField,
)

from .test_key_ring_cache import CountingStore

ORG, OTHER_ORG, PERSON = uuid.UUID(int=11), uuid.UUID(int=12), uuid.UUID(int=13)
AT = datetime.datetime(2031, 5, 6, 7, 8, 9, tzinfo=datetime.UTC)


@pytest.fixture
def store(monkeypatch):
    store = CountingStore()
    monkeypatch.setattr(crypto, "keyring", KeyRing(store))
    return store


@pytest.fixture
def probe():
    with isolate_apps("security"):
        class Probe(models.Model):
            id = models.UUIDField(primary_key=True, default=uuid.uuid4)
            organization_id = models.UUIDField(null=True)
            subject_id = models.UUIDField(null=True)
            occurred_at = models.DateTimeField(null=True)
            note = EncryptedTextField("Private note", null=True, blank=True)
            note_index = BlindIndexField("Note index", source="note", purpose="probe.note")
            secret = EncryptedCharField("Secret", max_length=20, null=True, key_scope="field:subject_id")
            mine = EncryptedTextField(null=True, key_scope="self")
            own = EncryptedTextField(null=True, key_scope="self_org")
            data = EncryptedJSONField(null=True)
            shared = EncryptedTextField(null=True, key_scope="system:audit:v2")
            ip = EncryptedIPAddressField("Address", null=True, blank=True, key_scope="system:sign-in",
                                         row_field="occurred_at")
            ip_index = IPAddressIndexField("Address index", source="ip")
            ip_network = NetworkIndexField(source="ip")
            tenant = EncryptedUUIDField(null=True, blank=True)
            odd = EncryptedTextField(null=True, key_scope="team")

            class Meta:
                app_label = "security"

        yield Probe


def field(model, name):
    return model._meta.get_field(name)


# -- declarations -----------------------------------------------------------------------------------
def test_encrypted_fields_are_ordinary_columns_with_their_declared_options(probe):
    # Saves write local concrete fields only: a private field would never reach its column.
    concrete = {f.name for f in probe._meta.local_concrete_fields}
    assert {"note", "secret", "ip", "tenant", "note_index", "ip_index"} <= concrete
    assert (field(probe, "note").verbose_name, field(probe, "secret").verbose_name) == ("Private note", "Secret")
    assert (field(probe, "ip").verbose_name, field(probe, "ip_index").verbose_name) == ("Address", "Address index")
    assert field(probe, "note_index").verbose_name == "Note index"
    assert field(probe, "ip").null and field(probe, "ip").key_scope == "system:sign-in"
    assert field(probe, "ip_index").source == "ip"
    assert (field(probe, "ip_index").purpose, field(probe, "ip_network").purpose) == (
        IP_INDEX_PURPOSE, NETWORK_INDEX_PURPOSE)


def test_migrations_see_the_row_field_and_not_the_fixed_options():
    assert EncryptedTextField(row_field="sequence").deconstruct()[3] == {"row_field": "sequence"}
    assert EncryptedIPAddressField(null=True, row_field="sequence").deconstruct()[3] == {
        "null": True, "row_field": "sequence"}
    assert IPAddressIndexField(source="ip").deconstruct()[3] == {"source": "ip"}


def test_an_address_field_holds_45_characters_of_a_valid_address():
    address = EncryptedIPAddressField()
    assert address.plaintext_max_length == 45
    address.clean("2001:db8::1", None)
    with pytest.raises(ValidationError):
        address.clean("not an address", None)
    with pytest.raises(ValidationError):
        address.clean("1" * 46, None)


def test_form_fields_take_the_options_they_are_given():
    assert EncryptedTextField().formfield(required=False).required is False
    assert EncryptedCharField(max_length=9).formfield(label="Code").label == "Code"


# -- what a ciphertext is bound to --------------------------------------------------------------------
def test_each_key_scope_names_its_key_and_binds_its_row(probe):
    row = probe(id=uuid.UUID(int=1), organization_id=ORG, subject_id=PERSON, occurred_at=AT)
    expected = {
        "note": (KeyScope("org", str(ORG)), f"security.probe.note|org:{ORG}|{row.pk}"),
        "secret": (KeyScope("subject", str(PERSON)), f"security.probe.secret|subject:{PERSON}|{row.pk}"),
        "mine": (KeyScope("subject", str(row.pk)), f"security.probe.mine|subject:{row.pk}|{row.pk}"),
        "own": (KeyScope("org", str(row.pk)), f"security.probe.own|org:{row.pk}|{row.pk}"),
        "shared": (KeyScope("system", "audit:v2"), f"security.probe.shared|system:audit:v2|{row.pk}"),
        "ip": (KeyScope("system", "sign-in"), f"security.probe.ip|system:sign-in|{AT.isoformat()}"),
    }
    for name, (scope, aad) in expected.items():
        assert field(probe, name).scope_for(row) == scope, name
        assert field(probe, name)._aad(row) == aad.encode(), name


def test_a_row_without_its_owner_cannot_be_encrypted(probe):
    row = probe(id=uuid.UUID(int=1))
    with pytest.raises(ValueError) as no_org:
        field(probe, "note").scope_for(row)
    assert str(no_org.value) == "Probe.note: organisation must be set before encrypting."
    with pytest.raises(ValueError) as no_subject:
        field(probe, "secret").scope_for(row)
    assert str(no_subject.value) == "Probe.secret: subject key must be set before encrypting."
    with pytest.raises(ValueError) as unknown:
        field(probe, "odd").scope_for(row)
    assert str(unknown.value) == "Unknown key scope 'team'"


def test_a_row_that_changes_owner_or_id_is_bound_to_the_new_ones(probe, store):
    row = probe(id=uuid.UUID(int=1), organization_id=ORG)
    note = field(probe, "note")
    assert note._aad(row) == f"security.probe.note|org:{ORG}|{row.pk}".encode()
    row.organization_id = OTHER_ORG
    assert note._aad(row) == f"security.probe.note|org:{OTHER_ORG}|{row.pk}".encode()
    assert note.scope_for(row) == KeyScope("org", str(OTHER_ORG))
    row.id = uuid.UUID(int=2)
    assert note._aad(row) == f"security.probe.note|org:{OTHER_ORG}|{row.id}".encode()
    sealed = note.encrypt_for(row, "hello")
    assert crypto.decrypt_text(sealed, aad=f"security.probe.note|org:{OTHER_ORG}|{row.id}".encode()) == "hello"


def test_a_model_that_moved_app_keeps_its_old_label_in_the_binding():
    with isolate_apps("security"):
        class Moved(models.Model):
            organization_id = models.UUIDField(null=True)
            note = EncryptedTextField(null=True)
            ciphertext_label = "accounts.oldname"

            class Meta:
                app_label = "security"

    row = Moved(id=5, organization_id=ORG)
    assert Moved._meta.get_field("note")._aad(row) == f"accounts.oldname.note|org:{ORG}|5".encode()


# -- reads, saves and the blind index -----------------------------------------------------------------
def test_a_stored_ciphertext_decrypts_on_first_read(probe, store):
    row = probe(id=uuid.UUID(int=1), organization_id=ORG)
    sealed = field(probe, "note").encrypt_for(row, "first")
    row.note = Ciphertext(sealed)
    assert row.note == "first"
    assert field(probe, "note").value_to_string(row) == "first"
    row.data = {"b": [1, 2]}
    assert field(probe, "data").value_to_string(row) == '{"b":[1,2]}'
    row.data = None
    assert field(probe, "data").value_to_string(row) is None


def test_a_second_save_keeps_the_ciphertext_of_an_unchanged_value(probe, store):
    row = probe(id=uuid.UUID(int=1), organization_id=ORG)
    row.note = "kept"
    note = field(probe, "note")
    first = note.pre_save(row, add=True)
    assert isinstance(first, Ciphertext) and first.startswith("v1:")
    assert note.pre_save(row, add=False) == first
    row.note = "changed"
    assert note.pre_save(row, add=False) != first
    row.note = None
    assert note.pre_save(row, add=False) is None


def test_saving_a_row_whose_encrypted_value_was_never_read_keeps_its_index_without_decrypting(probe, store):
    row = probe(id=uuid.UUID(int=1), organization_id=ORG)
    sealed = field(probe, "note").encrypt_for(row, "hello")
    unreadable = probe(id=uuid.UUID(int=1), organization_id=ORG)
    unreadable.note = Ciphertext(sealed)
    unreadable.note_index = "stored-index"
    store.keys.clear()  # crypto-shredded: reading the value now would fail
    crypto.keyring.clear()
    index = field(probe, "note_index")
    assert field(probe, "note").is_undecrypted(unreadable)
    assert index.pre_save(unreadable, add=False) == "stored-index"
    with pytest.raises(DecryptionError):
        index.pre_save(unreadable, add=True)


def test_the_blind_index_follows_a_changed_value(probe, store):
    row = probe(id=uuid.UUID(int=1), organization_id=ORG, note_index="stale")
    row.note = "New Value"
    index = field(probe, "note_index")
    assert not field(probe, "note").is_undecrypted(row)
    assert index.pre_save(row, add=False) == crypto.blind_index("probe.note", "new value") == row.note_index


def test_the_address_indexes_are_the_address_and_its_network():
    assert IPAddressIndexField(source="ip").index_of("198.51.100.7") == ip_index("198.51.100.7")
    assert NetworkIndexField(source="ip").index_of("198.51.100.7") == network_index("198.51.100.7")
    assert network_index("198.51.100.7") == network_index("198.51.100.200") != ip_index("198.51.100.7")


def test_a_plaintext_update_is_refused_with_the_field_named(probe):
    with pytest.raises(FieldError) as refused:
        field(probe, "note").get_db_prep_value("plain", connection=None)
    assert str(refused.value) == (
        "Probe.note is encrypted: save it through the model, and search it through its blind index.")
    assert field(probe, "note").get_db_prep_value(Ciphertext("v1:x:y"), connection=None) == "v1:x:y"


# -- what the address and UUID fields store -----------------------------------------------------------
def test_an_address_is_stored_in_its_canonical_text():
    address = EncryptedIPAddressField()
    assert address.to_plaintext("2001:DB8:0::0001") == "2001:db8::1"
    assert address.to_plaintext(" 198.51.100.7 ") == "198.51.100.7"
    assert address.to_plaintext("unknown") == "unknown"
    assert address.to_python("") is None
    assert address.to_python("198.51.100.7") == "198.51.100.7"


def test_a_uuid_is_stored_in_its_canonical_text_and_read_back_as_a_uuid():
    tenant = EncryptedUUIDField()
    value = uuid.UUID("8a1f4c2e-6b3d-4e7a-9c51-2d0f3b6a7e94")
    assert tenant.to_plaintext("8A1F4C2E6B3D4E7A9C512D0F3B6A7E94") == str(value)
    assert tenant.to_plaintext(value) == str(value)
    assert tenant.from_plaintext(str(value)) == value
    assert tenant.to_python(str(value)) == value
    assert tenant.to_python("") is None
    stored = Ciphertext("v1:abc:def")
    assert tenant.to_python(stored) is stored
    with pytest.raises(ValidationError) as refused:
        tenant.to_python("not-a-uuid")
    assert refused.value.messages == ["'not-a-uuid' is not a valid UUID."]
