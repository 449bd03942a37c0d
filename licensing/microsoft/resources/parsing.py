"""How the typed resources read Microsoft's JSON: ISO times with a trailing Z, money as Decimal
parsed from the number's text (never through float), and keys whose case Partner Center varies.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any


def parse_datetime(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def parse_decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def get_any_case(obj: dict, name: str, default=None):
    """Partner Center mixes ``companyProfile`` and ``CompanyProfile``; read either."""
    if name in obj:
        return obj[name]
    lowered = name.lower()
    return next((v for k, v in obj.items() if k.lower() == lowered), default)

