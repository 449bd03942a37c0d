"""The encrypted field classes as declared: what they refuse, what migrations see, what forms get."""

import datetime
import decimal

import pytest
from django import forms
from django.core import validators
from django.core.exceptions import FieldError, ValidationError

from core.fields import (
    BlindIndexField,
    Ciphertext,
    EncryptedCharField,
    EncryptedDateField,
    EncryptedDecimalField,
    EncryptedField,
    EncryptedJSONField,
    EncryptedTextField,
)


@pytest.mark.parametrize("option", ["unique", "db_index", "primary_key"])
def test_encrypted_fields_refuse_database_side_lookups(option):
    refused = rf"^Encrypted fields cannot be {option}; add a BlindIndexField instead\.$"
    with pytest.raises(ValueError, match=refused):
        EncryptedTextField(**{option: True})
    assert EncryptedTextField(**{option: False}).key_scope == "organization"


def test_deconstruct_names_only_what_differs_from_the_defaults():
    _name, path, args, kwargs = EncryptedTextField().deconstruct()
    assert path == "core.fields.EncryptedTextField" and args == []
    assert "key_scope" not in kwargs
    assert EncryptedTextField(key_scope="self").deconstruct()[3]["key_scope"] == "self"
    assert EncryptedTextField(key_scope="field:user").key_scope == "field:user"
    char = EncryptedCharField(max_length=40, key_scope="self_org")
    assert char.deconstruct()[3] == {"max_length": 40, "key_scope": "self_org"}
    assert EncryptedCharField().deconstruct()[3] == {"max_length": 255}


def test_char_field_checks_the_plaintext_length_and_tells_forms():
    field = EncryptedCharField(max_length=5)
    assert field.plaintext_max_length == 5
    assert any(isinstance(v, validators.MaxLengthValidator) and v.limit_value == 5 for v in field.validators)
    assert EncryptedCharField().plaintext_max_length == 255
    form_field = field.formfield()
    assert isinstance(form_field, forms.CharField) and form_field.max_length == 5 and form_field.required
    assert EncryptedCharField(blank=True).formfield().required is False


def test_form_fields_match_the_logical_type():
    assert isinstance(EncryptedTextField().formfield().widget, forms.Textarea)
    assert EncryptedTextField(blank=True).formfield().required is False
    assert isinstance(EncryptedJSONField().formfield(), forms.JSONField)
    assert isinstance(EncryptedDateField().formfield(), forms.DateField)
    assert isinstance(EncryptedDecimalField().formfield(), forms.DecimalField)
    assert EncryptedDecimalField().formfield(required=False).required is False


def test_only_isnull_lookups_and_no_transforms():
    field = EncryptedTextField()
    field.name = "secret"
    assert field.get_lookup("isnull") is not None
    only_isnull = r"^Encrypted field secret supports only 'isnull' lookups; use its blind index\.$"
    with pytest.raises(FieldError, match=only_isnull):
        field.get_lookup("exact")
    with pytest.raises(FieldError, match=r"^Encrypted field secret cannot be transformed in SQL\.$"):
        field.get_transform("lower")


def test_logical_values_round_trip_through_their_text():
    assert EncryptedDateField().to_python("2028-02-29") == datetime.date(2028, 2, 29)
    with pytest.raises(ValidationError, match="is not a valid date"):
        EncryptedDateField().to_python("2027-02-29")
    stored = Ciphertext("v1:abc")
    assert EncryptedDateField().to_python(stored) is stored
    assert EncryptedDecimalField().to_python("12.50") == decimal.Decimal("12.50")
    assert EncryptedDecimalField().to_python(3) == decimal.Decimal(3)
    with pytest.raises(ValidationError, match="is not a valid amount"):
        EncryptedDecimalField().to_python("twelve")
    assert EncryptedDecimalField().to_python(stored) is stored
    assert EncryptedTextField().to_python(None) is None
    assert EncryptedJSONField().to_plaintext({"b": 1, "a": [2]}) == '{"a":[2],"b":1}'
    with pytest.raises(ValidationError, match="must be a date"):
        EncryptedDateField().to_plaintext("2028-02-29")


def test_blind_index_defaults_and_deconstruct():
    field = BlindIndexField(source="email", purpose="user.email")
    assert (field.max_length, field.editable, field.db_index, field.null) == (64, False, True, True)
    assert field.deconstruct()[3] == {"source": "email", "purpose": "user.email"}
    unique = BlindIndexField(source="email", purpose="user.email", unique=True, db_index=False, max_length=32)
    kwargs = unique.deconstruct()[3]
    assert kwargs["unique"] is True and kwargs["max_length"] == 32 and "db_index" not in kwargs
    assert (kwargs["source"], kwargs["purpose"]) == ("email", "user.email")
    assert isinstance(EncryptedField().formfield(), forms.CharField)
