from django.conf import settings
from django.core import checks

from security.crypto import KeyConfigurationError, master_keys


@checks.register(checks.Tags.security, deploy=False)
def check_encryption_keys(app_configs=None, **kwargs):
    try:
        master_keys()
    except KeyConfigurationError as exc:
        return [checks.Error(str(exc), id="portal.E001")]
    if not settings.AUDIT_HMAC_KEY or not settings.BLIND_INDEX_KEY:
        return [checks.Error("AUDIT_HMAC_KEY and BLIND_INDEX_KEY must be set.", id="portal.E002")]
    return []
