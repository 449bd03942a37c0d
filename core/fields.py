"""Encrypted model fields (AES-256-GCM) and the blind index that makes them searchable.

Values are decrypted lazily, on first attribute access, because the associated
data needs the row (its owner and primary key), which ``from_db_value`` does not
see. Code that reads many rows as ``values()`` (access reports) decrypts with
``EncryptedField.decrypt_values``, given the row's ``binding_attnames``: the same key and
associated data, without a model instance. Lookups other than ``isnull`` are refused: search
through a BlindIndexField.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import json
import uuid
from collections.abc import Mapping

from django import forms
from django.core import validators
from django.core.exceptions import FieldError, ValidationError
from django.db import connections, models
from django.utils import timezone

from .blind_index import IP_INDEX_PURPOSE, NETWORK_INDEX_PURPOSE, ip_index, network_index, normalise_ip
from .crypto import KeyScope, blind_index, blind_indexer, decrypt_text, encrypt_text, encryptor, random_uuids


class Ciphertext(str):
    """Marks a stored ciphertext, as opposed to a plaintext value set by code."""


_NOT_DECRYPTED = object()


@functools.lru_cache(maxsize=4096)
def _id_text(value) -> str:
    # str(UUID) is slow enough to show in the encrypted round trip; ids repeat a lot.
    return value.isoformat() if isinstance(value, datetime.datetime) else str(value)


@functools.lru_cache(maxsize=4096)
def _scope(kind: str, ident) -> KeyScope:
    return KeyScope(kind, str(ident))


class _EncryptedDescriptor:
    """Keeps the stored ciphertext beside the attribute and decrypts on first read.

    A loaded row holds a sentinel under the attribute name, so Django still sees
    the field as loaded (not deferred) and ``refresh_from_db`` reloads it.
    """

    def __init__(self, field: EncryptedField):
        self.field = field

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        data = instance.__dict__
        name = self.field.attname
        if name not in data:
            # Deferred by .only()/.defer(): load it the way Django would.
            instance.refresh_from_db(fields=[name])
        value = data[name]
        if value is _NOT_DECRYPTED:
            value = data[name] = self.field.decrypt_for(instance, data[self.field.raw_attname])
        return value

    def __set__(self, instance, value):
        data = instance.__dict__
        if isinstance(value, Ciphertext):
            data[self.field.raw_attname] = value
            data[self.field.attname] = _NOT_DECRYPTED
        else:
            data[self.field.attname] = value
            data.pop(self.field.raw_attname, None)


class EncryptedField(models.TextField):
    """Base class. ``key_scope`` picks the data key:

    - ``"organization"``: the row's organisation (business data);
    - ``"self"``: the row itself is the data subject (crypto-shredding per person);
    - ``"self_org"``: the row is the organisation itself;
    - ``"field:<name>"``: the subject id held in another field of the row;
    - ``"system:<name>"``: one key for the whole table, for rows that have no owner when written
      (audit events and sign-in attempts without an organisation or a known person).

    ``row_field`` names the field that binds a ciphertext to its row (the primary key unless
    said otherwise): a table whose id the database assigns only on insert binds to a value
    known before it (the audit chain's sequence, a sign-in's time).
    """

    python_form_class: type[forms.Field] = forms.CharField

    def __init__(self, *args, key_scope: str = "organization", row_field: str | None = None, **kwargs):
        for forbidden in ("unique", "db_index", "primary_key"):
            if kwargs.get(forbidden):
                raise ValueError(f"Encrypted fields cannot be {forbidden}; add a BlindIndexField instead.")
        self.key_scope = key_scope
        self.row_field = row_field
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if self.key_scope != "organization":
            kwargs["key_scope"] = self.key_scope
        if self.row_field:
            kwargs["row_field"] = self.row_field
        return name, path, args, kwargs

    @functools.cached_property
    def raw_attname(self) -> str:
        return f"_{self.attname}_ciphertext"

    def contribute_to_class(self, cls, name, private_only=False):
        super().contribute_to_class(cls, name, private_only=private_only)
        setattr(cls, self.attname, _EncryptedDescriptor(self))

    # --- serialisation of the logical value ---------------------------------
    def to_plaintext(self, value) -> str:
        return str(value)

    def from_plaintext(self, text: str):
        return text

    # --- key scope and associated data ---------------------------------------
    def scope_for(self, instance) -> KeyScope:
        return self._scope_of(getattr(instance, self._scope_attname) if self._scope_attname else None)

    def _scope_of(self, owner) -> KeyScope:
        """The key scope, given the value of the column that names its owner (:attr:`_scope_attname`)."""
        if self.key_scope == "organization":
            if owner is None:
                raise ValueError(f"{self.model.__name__}.{self.name}: organisation must be set before encrypting.")
            return _scope("org", owner)
        if self.key_scope == "self":
            return _scope("subject", owner)
        if self.key_scope == "self_org":
            return _scope("org", owner)
        if self.key_scope.startswith("field:"):
            if owner is None:
                raise ValueError(f"{self.model.__name__}.{self.name}: subject key must be set before encrypting.")
            return _scope("subject", owner)
        if self.key_scope.startswith("system:"):
            return _scope("system", self.key_scope.split(":", 1)[1])
        raise ValueError(f"Unknown key scope {self.key_scope!r}")

    @functools.cached_property
    def _scope_attname(self) -> str | None:
        """The column whose value picks the data key (None for a table-wide system key)."""
        if self.key_scope == "organization":
            return "organization_id"
        if self.key_scope in ("self", "self_org"):
            return self.model._meta.pk.attname
        if self.key_scope.startswith("field:"):
            return self.model._meta.get_field(self.key_scope.split(":", 1)[1]).attname
        return None

    @functools.cached_property
    def binding_attnames(self) -> tuple[str, ...]:
        """The columns besides the ciphertext that :meth:`decrypt_values` reads: the key's owner and the row."""
        return tuple(dict.fromkeys(name for name in (self._scope_attname, self._pk_attname) if name))

    def _aad(self, instance) -> bytes:
        """Binds a ciphertext to model, field, key scope and row (see crypto.associated_data)."""
        return (self._aad_prefix + self._row_context(instance)[1]).encode()

    @staticmethod
    def _binding(scope: KeyScope, row_id) -> str:
        return f"{scope.kind}:{scope.id}|{_id_text(row_id)}"

    def _row_context(self, instance) -> tuple[KeyScope, str]:
        """The row's key scope and its "<scope>|<row id>" binding.

        Both are the same for every encrypted field of a row with this key scope, so they are
        worked out once per row and reused while the owner and primary key stay the same.
        """
        data = instance.__dict__
        owner, pk = data.get(self._scope_attname), data.get(self._pk_attname)
        cache = data.get("_encrypted_row_context")
        if cache is None:
            cache = data["_encrypted_row_context"] = {}
        cached = cache.get(self.key_scope)
        if cached is not None and cached[0] == owner and cached[1] == pk:
            return cached[2]
        scope = self.scope_for(instance)
        context = (scope, self._binding(scope, pk))
        cache[self.key_scope] = (owner, pk, context)
        return context

    @functools.cached_property
    def _pk_attname(self) -> str:
        if self.row_field:
            return self.model._meta.get_field(self.row_field).attname
        return self.model._meta.pk.attname

    @functools.cached_property
    def _aad_prefix(self) -> str:
        return f"{ciphertext_label(self.model)}.{self.name}|"

    def encrypt_for(self, instance, value) -> Ciphertext:
        scope, binding = self._row_context(instance)
        aad = (self._aad_prefix + binding).encode()
        return Ciphertext(encrypt_text(self.to_plaintext(value), scope=scope, aad=aad))

    def decrypt_for(self, instance, ciphertext: str):
        return self._decrypt(ciphertext, self._aad(instance))

    def decrypt_values(self, ciphertext: str, values: Mapping[str, object]):
        """Decrypt a ciphertext read without its model instance (``values()``, for reports of many rows):
        ``values`` holds the row's :attr:`binding_attnames`, and the key and associated data are the
        ones :meth:`decrypt_for` uses for the same row."""
        scope = self._scope_of(values[self._scope_attname] if self._scope_attname else None)
        return self._decrypt(ciphertext, (self._aad_prefix + self._binding(scope, values[self._pk_attname])).encode())

    def _decrypt(self, ciphertext: str, aad: bytes):
        return self.from_plaintext(decrypt_text(ciphertext, aad=aad))

    # --- Django field protocol ------------------------------------------------
    def pre_save(self, model_instance, add):
        data = model_instance.__dict__
        value = data.get(self.attname)
        if value is _NOT_DECRYPTED or (value is not None and self.raw_attname in data):
            # Unchanged since it was loaded or last saved: keep the ciphertext, skip the crypto.
            return data[self.raw_attname]
        if value is None:
            return None
        ciphertext = self.encrypt_for(model_instance, value)
        data[self.raw_attname] = ciphertext
        return ciphertext

    def is_undecrypted(self, model_instance) -> bool:
        """True while the loaded ciphertext has not been read or replaced (so it cannot have changed)."""
        return model_instance.__dict__.get(self.attname) is _NOT_DECRYPTED

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None or isinstance(value, Ciphertext):
            return None if value is None else str(value)
        raise FieldError(
            f"{self.model.__name__}.{self.name} is encrypted: save it through the model, "
            "and search it through its blind index."
        )

    def from_db_value(self, value, expression, connection):
        return None if value is None else Ciphertext(value)

    def to_python(self, value):
        if value is None or isinstance(value, Ciphertext):
            return value
        return value

    def value_to_string(self, obj):
        value = self.value_from_object(obj)
        return None if value is None else self.to_plaintext(value)

    def get_lookup(self, lookup_name):
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)
        raise FieldError(f"Encrypted field {self.name} supports only 'isnull' lookups; use its blind index.")

    def get_transform(self, name):
        raise FieldError(f"Encrypted field {self.name} cannot be transformed in SQL.")

    def formfield(self, **kwargs):
        defaults = {"form_class": self.python_form_class, "required": not self.blank}
        defaults.update(kwargs)
        return models.Field.formfield(self, **defaults)


class EncryptedTextField(EncryptedField):
    python_form_class = forms.CharField

    def formfield(self, **kwargs):
        return super().formfield(widget=forms.Textarea, **kwargs)


class EncryptedCharField(EncryptedField):
    """Text with a maximum length checked on the plaintext; stored as text, so no migration churn."""

    def __init__(self, *args, max_length: int = 255, **kwargs):
        self.plaintext_max_length = max_length
        super().__init__(*args, **kwargs)
        self.validators.append(validators.MaxLengthValidator(max_length))

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["max_length"] = self.plaintext_max_length
        return name, path, args, kwargs

    def formfield(self, **kwargs):
        return super().formfield(max_length=self.plaintext_max_length, **kwargs)


class EncryptedJSONField(EncryptedField):
    python_form_class = forms.JSONField

    def to_plaintext(self, value) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))

    def from_plaintext(self, text: str):
        return json.loads(text)


class EncryptedDateField(EncryptedField):
    python_form_class = forms.DateField

    def to_plaintext(self, value) -> str:
        if not isinstance(value, datetime.date):
            raise ValidationError(f"{self.name} must be a date.")
        return value.isoformat()

    def from_plaintext(self, text: str):
        return datetime.date.fromisoformat(text)

    def to_python(self, value):
        if isinstance(value, str) and not isinstance(value, Ciphertext):
            try:
                return datetime.date.fromisoformat(value)
            except ValueError as exc:
                raise ValidationError(f"{value!r} is not a valid date.") from exc
        return value


class EncryptedDecimalField(EncryptedField):
    python_form_class = forms.DecimalField

    def to_plaintext(self, value) -> str:
        return str(decimal.Decimal(value))

    def from_plaintext(self, text: str):
        return decimal.Decimal(text)

    def to_python(self, value):
        if isinstance(value, (str, int, float)) and not isinstance(value, Ciphertext):
            try:
                return decimal.Decimal(str(value))
            except decimal.InvalidOperation as exc:
                raise ValidationError(f"{value!r} is not a valid amount.") from exc
        return value


class EncryptedUUIDField(EncryptedField):
    """A UUID (read back as ``uuid.UUID``), encrypted: for identifiers that name a customer."""

    def to_plaintext(self, value) -> str:
        return str(self.to_python(value))

    def from_plaintext(self, text: str):
        return uuid.UUID(text)

    def to_python(self, value):
        if isinstance(value, str) and not isinstance(value, Ciphertext):
            if not value:
                return None
            try:
                return uuid.UUID(value)
            except ValueError as exc:
                raise ValidationError(f"{value!r} is not a valid UUID.") from exc
        return value


class EncryptedIPAddressField(EncryptedCharField):
    """An IPv4 or IPv6 address, validated and stored in its canonical text, encrypted.

    Look it up through an :class:`IPAddressIndexField` (exact) or :class:`NetworkIndexField`
    (its /24 or /48), never through the ciphertext.
    """

    def __init__(self, *args, **kwargs):
        kwargs["max_length"] = 45
        super().__init__(*args, **kwargs)
        self.validators.append(validators.validate_ipv46_address)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("max_length", None)
        return name, path, args, kwargs

    def to_plaintext(self, value) -> str:
        return normalise_ip(value) or str(value)

    def to_python(self, value):
        if value == "":
            return None
        return super().to_python(value)


class BlindIndexField(models.CharField):
    """HMAC-SHA256 of another (encrypted) field, kept in step on save, for exact lookups."""

    def __init__(self, *args, source: str, purpose: str, **kwargs):
        self.source = source
        self.purpose = purpose
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("editable", False)
        kwargs.setdefault("db_index", True)
        kwargs.setdefault("null", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["source"] = self.source
        kwargs["purpose"] = self.purpose
        for key, default in (("max_length", 64), ("editable", False), ("db_index", True), ("null", True)):
            if kwargs.get(key) == default:
                kwargs.pop(key)
        if not self.db_index and not self.unique:
            # Field.deconstruct leaves out db_index=False, which __init__ would turn back into True: an
            # index covered by a constraint (the organisation and the index, say) would come back.
            kwargs["db_index"] = False
        return name, path, args, kwargs

    def pre_save(self, model_instance, add):
        source_field = model_instance._meta.get_field(self.source)
        # The source's own pre_save has already run, so judge change by its plaintext: an
        # undecrypted value is unchanged; anything else is re-indexed (an HMAC is cheap).
        if not add and isinstance(source_field, EncryptedField) and source_field.is_undecrypted(model_instance):
            return getattr(model_instance, self.attname)
        value = self.index_of(getattr(model_instance, self.source))
        setattr(model_instance, self.attname, value)
        return value

    def index_of(self, value) -> str | None:
        """The index of a plaintext value, as stored: use it to build the lookup."""
        return blind_index(self.purpose, value)

    def indexer(self):
        """``index_of`` for the many values of one batch: the HMAC key looked up once where the index is a
        plain blind index (a subclass that normalises its values first indexes each one its own way)."""
        if type(self).index_of is BlindIndexField.index_of:
            return blind_indexer(self.purpose)
        return self.index_of


class UUIDIndexField(BlindIndexField):
    """Keyed index of an encrypted UUID over its canonical text: a ``UUID``, its upper-case or its
    hyphen-less spelling index alike (an object id from Graph, say, whatever the caller holds)."""

    def index_of(self, value) -> str | None:
        if value is None or value == "":
            return None
        return blind_index(self.purpose, str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))))


class IPAddressIndexField(BlindIndexField):
    """Keyed index of an encrypted IP address (``core.blind_index.ip_index``); empty address: NULL."""

    default_purpose = IP_INDEX_PURPOSE

    def __init__(self, *args, source: str, **kwargs):
        kwargs["purpose"] = self.default_purpose
        super().__init__(*args, source=source, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("purpose", None)
        return name, path, args, kwargs

    def index_of(self, value) -> str | None:
        return ip_index(value)


class NetworkIndexField(IPAddressIndexField):
    """Keyed index of the /24 (IPv4) or /48 (IPv6) network of an encrypted IP address."""

    default_purpose = NETWORK_INDEX_PURPOSE

    def index_of(self, value) -> str | None:
        return network_index(value)


def ciphertext_label(model) -> str:
    """The model name bound into its ciphertexts' associated data.

    It is the model's label, except for a model that moved to another app: its rows were
    encrypted under the old label, so it names that label in ``ciphertext_label`` and
    existing ciphertext keeps decrypting (docs/decisions/009-layers.md).
    """
    return getattr(model, "ciphertext_label", None) or model._meta.label_lower


def encrypted_bulk_update(queryset, objs, field_names: list[str], *, batch_size: int | None = None) -> int:
    """``queryset.bulk_update`` for rows with encrypted fields and blind indexes.

    Django's ``bulk_update`` reads each attribute as it stands and skips ``pre_save``: an encrypted
    field would hand it plaintext (refused, see ``get_db_prep_value``), a blind index a stale value and
    ``auto_now`` the old time. This runs the ``pre_save`` a ``save()`` would, so a value unchanged since
    it was loaded keeps its ciphertext (no encryption) and a changed one is encrypted once, then updates
    with the ciphertexts. The rows keep their plaintext attributes afterwards.
    """
    if not objs:
        return 0
    fields = [queryset.model._meta.get_field(name) for name in field_names]
    swapped = []
    for obj in objs:
        # Every pre_save before any swap: a blind index asks its (still untouched) source whether it changed.
        prepared = [(field, field.pre_save(obj, False)) for field in fields]
        for field, value in prepared:
            if isinstance(field, EncryptedField):
                swapped.append((obj, field.attname, obj.__dict__[field.attname]))
                obj.__dict__[field.attname] = models.Value(value, output_field=field)
    try:
        return queryset.bulk_update(objs, field_names, batch_size=batch_size)
    finally:
        for obj, attname, value in swapped:
            obj.__dict__[attname] = value


# Values the PostgreSQL path of encrypted_bulk_insert sends as JSON without the field's preparation, and
# aware datetimes of a DateTimeField (``_aware_datetime``): its preparation hands an aware one back as it is,
# and the JSON carries its text with the offset; a naive one is prepared (Django's warning and conversion).
_JSON_NATIVE = frozenset({str, bool, int, uuid.UUID})


def _aware_datetime(value) -> bool:
    return type(value) is datetime.datetime and value.tzinfo is not None


def encrypted_bulk_insert(model, rows: list[dict], *, using: str = "default") -> None:
    """Insert new rows, each given as ``{attname: value}`` with plaintext in its encrypted fields, without
    building a model instance per row: what ``bulk_create`` writes, for a fraction of its per-value cost
    (a directory sync's first run inserts ten thousand users, twenty columns each).

    What a save would do is done here: every encrypted value is encrypted once, under the key of the
    row's owner and bound to model, field and row (the same associated data as ``encrypt_for``, checked
    by decrypting through the model); each blind index not given is computed from its source's
    plaintext; a missing primary key, default, ``auto_now`` or ``auto_now_add`` is filled. Each row's
    dict is completed in place, so the caller reads the new primary key from it. Validation is the
    caller's (``bulk_create`` does none either); the database enforces its constraints, and row-level
    security applies as to any insert. One ``INSERT`` per batch of rows (the database's parameter limit).
    A JSONField without an encoder of its own is sent as the document it holds; a value JSON cannot hold
    is written as its text (``str``), where a save would raise, so callers pass JSON values.
    """
    if not rows:
        return
    connection = connections[using]
    now = timezone.now()
    fields = list(model._meta.concrete_fields)
    encrypted = [f for f in fields if isinstance(f, EncryptedField)]
    indexes = [(f, model._meta.get_field(f.source).attname) for f in fields if isinstance(f, BlindIndexField)]
    indexers = [(index, source, index.indexer()) for index, source in indexes]
    plain = [f for f in fields if not isinstance(f, (EncryptedField, BlindIndexField))]
    kinds = [(f, f.attname, isinstance(f, models.DateTimeField), isinstance(f, models.JSONField) and f.encoder is None)
             for f in plain]
    sealers: dict[KeyScope, object] = {}
    native = connection.vendor == "postgresql"
    pk = model._meta.pk
    if pk.default is uuid.uuid4:
        # New primary keys from one read of the random source for the batch (core.crypto.random_uuids).
        keyless = [values for values in rows if pk.attname not in values]
        for values, new_id in zip(keyless, random_uuids(len(keyless)), strict=True):
            values[pk.attname] = new_id
    table_rows = []
    for values in rows:
        for field in plain:
            if field.attname not in values:
                if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                    values[field.attname] = now
                else:
                    values[field.attname] = field.get_default()  # as a new instance: "" or None when none is set
        for index, source, index_of in indexers:
            if index.attname not in values:
                values[index.attname] = index_of(values.get(source))
        if native:
            # JSON takes these as they are (text, numbers, flags, ids, aware times, and a JSONField's value,
            # which lands in its jsonb column as the same document): Django's preparation per value was a fifth
            # of the insert's Python. Anything else still goes through the field.
            row = [
                value if (value := values[attname]) is None or type(value) in _JSON_NATIVE or document
                or (timestamp and _aware_datetime(value)) else field.get_db_prep_save(value, connection)
                for field, attname, timestamp, document in kinds
            ]
        else:
            row = [field.get_db_prep_save(values[field.attname], connection) for field in plain]
        contexts: dict[str, tuple] = {}  # per key scope: the row's seal and "<scope>|<row id>" binding
        for field in encrypted:
            value = values.get(field.attname)
            if value is None:
                row.append(None)
                continue
            context = contexts.get(field.key_scope)
            if context is None:
                scope = field._scope_of(values[field._scope_attname] if field._scope_attname else None)
                seal = sealers.get(scope)
                if seal is None:
                    seal = sealers[scope] = encryptor(scope)
                context = contexts[field.key_scope] = (seal, field._binding(scope, values[field._pk_attname]))
            row.append(context[0](field.to_plaintext(value), (field._aad_prefix + context[1]).encode()))
        row += [values[index.attname] for index, _ in indexes]
        table_rows.append(row)
    columns = [*plain, *encrypted, *(index for index, _ in indexes)]
    names = ", ".join(connection.ops.quote_name(f.column) for f in columns)
    table = connection.ops.quote_name(model._meta.db_table)
    if connection.vendor == "postgresql":
        # One parameter, not one per value: psycopg's client-side binding parses a statement with ten
        # thousand placeholders for seconds, and adapts arrays (Django's UNNEST) element by element.
        # The rows go as one JSON array read back into the table's own row type, so every column keeps
        # its type; the insert is an ordinary one (constraints, row-level security). The document is bound
        # on the server (the project's backend, core/postgresql/base.py), not quoted into the statement's
        # text for the server to lex back out.
        keys = [f.column for f in columns]
        document = json.dumps([dict(zip(keys, row, strict=True)) for row in table_rows], default=str)
        with connection.server_bound_cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM json_populate_recordset(NULL::{table}, %s)",  # noqa: S608
                [document],
            )
        return
    with connection.cursor() as cursor:
        placeholder = "(" + ", ".join(["%s"] * len(columns)) + ")"
        limit = connection.features.max_query_params
        batch = max(1, limit // len(columns)) if limit else len(table_rows)
        for start in range(0, len(table_rows), batch):
            chunk = table_rows[start : start + batch]
            # Names quoted by the backend, values are parameters.
            sql = f"INSERT INTO {table} ({names}) VALUES {', '.join([placeholder] * len(chunk))}"  # noqa: S608
            cursor.execute(sql, [value for row in chunk for value in row])
