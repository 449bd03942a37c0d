"""Step-up: after a medium-risk sign-in, every session of the account proves its second factor again.

Sits between django-otp's middleware and the MFA gate: a session verified before the step-up was
required loses its verification here, so the gate sends it to the verify page on this very request.
"""

from __future__ import annotations

from django.core.cache import cache
from django_otp import DEVICE_ID_SESSION_KEY

from accounts.reauth import SESSION_KEY as MFA_VERIFIED_AT

from .monitoring import step_up_cache_key


class StepUpMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_verified():
            required_at = cache.get(step_up_cache_key(user.pk))
            if required_at and request.session.get(MFA_VERIFIED_AT, 0) < required_at:
                request.session.pop(DEVICE_ID_SESSION_KEY, None)
                user.otp_device = None
        return self.get_response(request)
