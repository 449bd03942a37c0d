from django.db import models

from core.models import BaseModel
from core.registry import declare


class MicrosoftTokenCache(BaseModel):
    """The msal token cache shared by every worker when there is no Redis.

    One row per cache name. ``ciphertext`` is the serialized msal cache (access tokens and the
    Admin Agent's refresh token), sealed with the system key scope; ``version`` is bumped on every
    write so concurrent writers compare-and-swap instead of overwriting each other.
    """

    name = models.CharField(max_length=64, unique=True)
    version = models.PositiveBigIntegerField(default=0)
    ciphertext = models.TextField(blank=True)

    class Meta:
        verbose_name = "Microsoft token cache"


# Credentials of the reseller's own app and service account, not data about a person the portal
# serves; sealed at rest and never exported.
declare(MicrosoftTokenCache, not_personal=["name", "version", "ciphertext"])
