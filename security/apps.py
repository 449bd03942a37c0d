from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "security"
    verbose_name = "Security"

    def ready(self):
        from .crypto import keyring
        from .keystore import DataKeyStore

        # crypto.py imports no models (the fields it serves are imported by models); the store does.
        keyring.use_store(DataKeyStore())
