from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        # The passkey plugin's models are declared from here: they are not ours to edit.
        from . import passkey_privacy  # noqa: F401
