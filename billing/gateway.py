"""The payment gateway interface, and the local test gateway that stands in for a card processor.

A card number or CVV never reaches the portal's code, database or logs: the customer types them
into the processor's hosted fields, the processor returns a token, and we keep only that token with
the card's brand, last four digits and expiry (:class:`CardDetails`).

``settings.BILLING_GATEWAY`` names the gateway class (dotted path). :class:`TestGateway` is the local
one: its hosted page (billing/test_gateway_views.py, mounted only when
``settings.BILLING_TEST_GATEWAY_ENABLED``) plays the processor's domain. Its tokens are signed, so a
forged or altered token is refused. Test card numbers behave like a processor's test cards:

- 4242 4242 4242 4242 (or any other valid number): approved;
- 4000 0000 0000 0002: declined by the bank;
- 4000 0000 0000 9995: declined, insufficient funds;
- 4000 0000 0000 5126: charged, but the bank refuses a refund of the charge (its charge id says so,
  as a processor would know it from its own records).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string
from stdnum import luhn

REFUND_FAILS = "4000000000005126"
DECLINES = {
    "4000000000000002": ("card_declined", "The card was declined by its bank. Use another card or pay by bank "
                                          "transfer."),
    "4000000000009995": ("insufficient_funds", "The card was declined: insufficient funds. Use another card or "
                                               "pay by bank transfer."),
}


@dataclass(frozen=True)
class CardDetails:
    brand: str
    last4: str
    exp_month: int
    exp_year: int

    def expired(self, today: date) -> bool:
        return (self.exp_year, self.exp_month) < (today.year, today.month)


class GatewayError(Exception):
    """The processor refused: ``code`` is stable, ``message`` is for the customer."""

    def __init__(self, message: str, *, code: str):
        super().__init__(message)
        self.code = code


class PaymentGateway(Protocol):
    name: str

    def describe(self, token: str) -> CardDetails: ...

    def charge(self, *, token: str, amount: Decimal, currency: str, idempotency_key: str) -> str:
        """Authorise and capture; returns the processor's charge id or raises GatewayError."""

    def refund(self, *, charge_id: str, amount: Decimal, currency: str, idempotency_key: str) -> str: ...


def brand_of(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or "2221" <= number[:4] <= "2720":
        return "mastercard"
    if number[:2] in {"34", "37"}:
        return "amex"
    return "card"


class TestGateway:
    """The local processor: signed tokens, deterministic ids (a retried charge gets the same id)."""

    name = "test"

    def _sign(self, payload: bytes) -> str:
        key = settings.BILLING_TEST_GATEWAY_SECRET.encode()
        return base64.urlsafe_b64encode(hmac.new(key, payload, hashlib.sha256).digest()).decode().rstrip("=")

    def tokenize(self, *, number: str, exp_month: int, exp_year: int, cvc: str) -> str:
        """What the hosted page does with what the customer typed. Only here do the digits exist."""
        number = "".join(ch for ch in number if ch.isdigit())
        if not (12 <= len(number) <= 19 and luhn.is_valid(number)):
            raise GatewayError("This is not a valid card number.", code="invalid_number")
        if not (cvc.isdigit() and len(cvc) in (3, 4)):
            raise GatewayError("The security code has 3 or 4 digits.", code="invalid_cvc")
        if not (1 <= exp_month <= 12) or exp_year < 2000:
            raise GatewayError("The expiry date is not valid.", code="invalid_expiry")
        outcome = "approve_no_refund" if number == REFUND_FAILS else DECLINES.get(number, ("approve", ""))[0]
        payload = json.dumps({"b": brand_of(number), "l": number[-4:], "m": exp_month, "y": exp_year, "o": outcome},
                             separators=(",", ":")).encode()
        body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return f"tok_test_{body}.{self._sign(payload)}"

    def _payload(self, token: str) -> dict:
        try:
            body, signature = token.removeprefix("tok_test_").split(".")
            payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (ValueError, TypeError):
            raise GatewayError("The payment processor does not know this card token.", code="invalid_token") from None
        if not token.startswith("tok_test_") or not hmac.compare_digest(signature, self._sign(payload)):
            raise GatewayError("The payment processor does not know this card token.", code="invalid_token")
        return json.loads(payload)

    def describe(self, token: str) -> CardDetails:
        data = self._payload(token)
        return CardDetails(data["b"], data["l"], int(data["m"]), int(data["y"]))

    def _id(self, prefix: str, key: str) -> str:
        return f"{prefix}_{self._sign(key.encode())[:24]}"

    def charge(self, *, token: str, amount: Decimal, currency: str, idempotency_key: str) -> str:
        outcome = self._payload(token)["o"]
        if outcome not in ("approve", "approve_no_refund"):
            code, message = next(v for v in DECLINES.values() if v[0] == outcome)
            raise GatewayError(message, code=code)
        if amount <= 0:
            raise GatewayError("Nothing to charge.", code="invalid_amount")
        return self._id("ch_norefund" if outcome == "approve_no_refund" else "ch", idempotency_key)

    def refund(self, *, charge_id: str, amount: Decimal, currency: str, idempotency_key: str) -> str:
        if not charge_id.startswith("ch_"):
            raise GatewayError("The payment processor does not know this charge.", code="unknown_charge")
        if amount <= 0:
            raise GatewayError("Nothing to refund.", code="invalid_amount")
        if charge_id.startswith("ch_norefund_"):
            raise GatewayError("The card's bank refused the refund. Refund by bank transfer instead.",
                               code="refund_declined")
        return self._id("re", idempotency_key)


def gateway() -> PaymentGateway:
    return import_string(settings.BILLING_GATEWAY)()
