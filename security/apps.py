from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "security"
    verbose_name = "Security"

    def ready(self):
        # Lower floors cannot import this one: login monitoring and the fraud provisioning block plug in here.
        from accounts.signin import register_sign_in_monitor

        from .monitoring import LoginMonitor

        register_sign_in_monitor(LoginMonitor())
