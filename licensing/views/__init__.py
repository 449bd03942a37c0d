"""Dashboard pages of the licensing core: tenant onboarding, catalog, purchase, subscriptions, provisioning."""

from django.core.exceptions import ValidationError

from licensing import nce
from security.audit import Actor


def actor_of(request) -> Actor:
    return Actor.user(request.user)


def error_text(exc: Exception) -> str:
    if isinstance(exc, nce.RuleViolation):
        return str(exc)
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    raise exc


