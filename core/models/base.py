"""Base models: UUID keys and the tenant-owned row, whose reads are scoped and fail closed."""

import uuid

from django.conf import settings
from django.db import models

from core.tenancy import TenantManager, UnscopedManager


class BaseModel(models.Model):
    """UUID primary keys: ids do not reveal volumes, and encrypted fields can bind
    their ciphertext to the row before it is inserted."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class TenantModel(BaseModel):
    """A row owned by one customer organisation. Reads are scoped, fail closed."""

    organization = models.ForeignKey(settings.TENANT_MODEL, on_delete=models.CASCADE, related_name="+", db_index=True)

    objects = TenantManager()
    unscoped_objects = UnscopedManager()

    class Meta:
        abstract = True
        base_manager_name = "unscoped_objects"
