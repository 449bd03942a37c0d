from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "security"
    verbose_name = "Security"

    def ready(self):
        # Lower floors cannot import this one: login monitoring and the fraud provisioning hold plug in
        # here, and importing the fraud module registers its outbox operation.
        from accounts.signin import register_sign_in_monitor
        from licensing.holds import register_provisioning_hold

        from . import fraud
        from .monitoring import LoginMonitor

        register_sign_in_monitor(LoginMonitor())
        register_provisioning_hold(fraud.provisioning_hold)
