"""The password backend: Django's ModelBackend, with its two user lookups made before anyone is in scope.

Users have row-level security (docs/decisions/043-row-level-security-on-users.md). Django's backend finds the
session's user (``get_user``, on every signed-in request; read with their memberships) and the account being
signed in to (``authenticate``) through the default manager, on the application role's connection, where no
context is set yet and so no row is visible. Both go through ``accounts.selectors`` instead, as the system role,
keyed by the session's own user id or the e-mail address typed in.
"""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.hashers import check_password

from core.tenancy import person_context

from .models import User
from .selectors import signed_in_user, user_by_email


class PortalModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        username = username if username is not None else kwargs.get(User.USERNAME_FIELD)
        if username is None or password is None:
            return None
        user = user_by_email(username)
        if user is None:
            User().set_password(password)  # as Django does: an unknown address costs a hash too (timing)
            return None
        if check_password(password, user.password, lambda raw: _password_rehash(user, raw)):
            return user if self.user_can_authenticate(user) else None
        return None

    def get_user(self, user_id):
        user = signed_in_user(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None


def _password_rehash(user: User, raw_password: str) -> None:
    """Store a right password under the current hasher, in the person's own context: their row is theirs to
    write (``AbstractBaseUser.check_password`` would save it with no context, where the update finds no row)."""
    user.set_password(raw_password)
    user._password = None
    with person_context(user):
        user.save(update_fields=["password"])
