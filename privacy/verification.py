"""Email codes that verify a public request: six digits, ten minutes, four wrong tries lock it.

Only a keyed hash of the code is stored (bound to the request), never the code.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta

from django.utils import timezone
from django.utils.crypto import salted_hmac

CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=10)


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_hash(request_id, code: str) -> str:
    return salted_hmac("privacy.request-code", f"{request_id}:{code}", algorithm="sha256").hexdigest()


def code_matches(request, code: str) -> bool:
    code = (code or "").strip().replace(" ", "")
    if not request.code_hash or len(code) != CODE_DIGITS or not code.isdigit():
        return False
    return hmac.compare_digest(request.code_hash, code_hash(request.pk, code))


def code_expired(request) -> bool:
    return request.code_expires_at is None or timezone.now() > request.code_expires_at
