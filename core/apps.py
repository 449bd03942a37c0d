from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The ground floor. It imports no app; higher floors plug in through the registries
    named in each module's docstring."""

    name = "core"
    verbose_name = "Core"

    def ready(self):
        from . import checks  # noqa: F401  (registers system checks)
        from .crypto import keyring
        from .keystore import DataKeyStore

        # crypto.py imports no models (the fields it serves are imported by models); the store does.
        keyring.use_store(DataKeyStore())
