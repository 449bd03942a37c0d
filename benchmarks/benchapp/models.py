"""Twin models for the encryption benchmark: the same five logical fields, plain and encrypted."""

import uuid

from django.db import models

from core.fields import (
    EncryptedCharField,
    EncryptedDateField,
    EncryptedDecimalField,
    EncryptedJSONField,
    EncryptedTextField,
)


class PlainRecord(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    note = models.TextField()
    name = models.CharField(max_length=100)
    data = models.JSONField()
    day = models.DateField()
    amount = models.DecimalField(max_digits=12, decimal_places=2)

    def __str__(self):
        return self.name


class EncryptedRecord(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    note = EncryptedTextField()
    name = EncryptedCharField(max_length=100)
    data = EncryptedJSONField()
    day = EncryptedDateField()
    amount = EncryptedDecimalField()

    def __str__(self):
        return str(self.pk)
