"""Reads for the privacy app."""

from __future__ import annotations

from django.db.models import Q

from privacy.models import OptOut


def user_opt_out(user) -> OptOut | None:
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return OptOut.objects.filter(user=user).first()


def organization_opt_out(organization) -> OptOut | None:
    if organization is None:
        return None
    return OptOut.objects.filter(organization=organization).first()


def organization_opted_out(organization) -> bool:
    """Whether disclosures about ``organization`` that are not strictly necessary are refused: the
    organisation opted out, or one of its members did (also one who joined after opting out)."""
    if organization is None:
        return False
    held = Q(organization=organization) | Q(user__memberships__organization=organization)
    return OptOut.objects.filter(held).exists()
