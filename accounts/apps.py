from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        # The passkey plugin's models are declared from here: they are not ours to edit.
        from . import passkey_privacy  # noqa: F401
        from .signin import last_login_record

        # Django's auth app (installed before this one) saves the last sign-in with no context, which row-level
        # security on users refuses (decision 043): the same receiver, in the person's own context, replaces it.
        user_logged_in.disconnect(dispatch_uid="update_last_login")
        user_logged_in.connect(last_login_record, dispatch_uid="update_last_login")
