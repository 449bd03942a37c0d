"""Typed results of Partner Center calls: customers and agreements, the catalog, carts and orders,
subscriptions and their transitions, fraud events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from licensing import nce

from .parsing import get_any_case, parse_datetime, parse_decimal


@dataclass(frozen=True)
class Address:
    first_name: str
    last_name: str
    address_line1: str
    city: str
    postal_code: str
    country: str
    state: str = ""
    address_line2: str = ""
    phone_number: str = ""

    def to_json(self) -> dict:
        data = {
            "firstName": self.first_name,
            "lastName": self.last_name,
            "addressLine1": self.address_line1,
            "city": self.city,
            "state": self.state,
            "postalCode": self.postal_code,
            "country": self.country,
            "phoneNumber": self.phone_number,
        }
        if self.address_line2:
            data["addressLine2"] = self.address_line2
        return data


@dataclass(frozen=True)
class Customer:
    id: str
    tenant_id: str
    domain: str
    company_name: str
    relationship: str
    raw: dict = field(repr=False)
    # Only present in the create response: the initial global admin and its temporary password.
    admin_user_name: str = ""
    admin_password: str = field(default="", repr=False)

    @classmethod
    def from_json(cls, data: dict) -> Customer:
        company = get_any_case(data, "companyProfile") or {}
        billing = get_any_case(data, "billingProfile") or {}
        credentials = get_any_case(data, "userCredentials") or {}
        return cls(
            id=data["id"],
            tenant_id=company.get("tenantId", data["id"]),
            domain=company.get("domain", ""),
            company_name=company.get("companyName") or billing.get("companyName", ""),
            relationship=data.get("relationshipToPartner", ""),
            raw=data,
            admin_user_name=credentials.get("userName", ""),
            admin_password=credentials.get("password", ""),
        )


@dataclass(frozen=True)
class Agreement:
    template_id: str
    type: str
    date_agreed: datetime | None
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: dict) -> Agreement:
        return cls(data.get("templateId", ""), data.get("type", ""), parse_datetime(data.get("dateAgreed")), data)


@dataclass(frozen=True)
class Product:
    id: str
    title: str
    product_type: str
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: dict) -> Product:
        return cls(data["id"], data.get("title", ""), (data.get("productType") or {}).get("id", ""), data)


@dataclass(frozen=True)
class Sku:
    id: str
    product_id: str
    title: str
    minimum_quantity: int
    maximum_quantity: int
    provisioning_id: str  # = the Graph skuId
    is_trial: bool
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: dict) -> Sku:
        dynamic = data.get("dynamicAttributes") or {}
        return cls(
            id=data["id"],
            product_id=data.get("productId", ""),
            title=data.get("title", ""),
            minimum_quantity=int(data.get("minimumQuantity", 1)),
            maximum_quantity=int(data.get("maximumQuantity", 0)),
            provisioning_id=dynamic.get("provisioningId", ""),
            is_trial=bool(data.get("isTrial", False)),
            raw=data,
        )


@dataclass(frozen=True)
class Term:
    id: str
    duration: str
    billing_cycle: str
    description: str


@dataclass(frozen=True)
class Availability:
    id: str
    product_id: str
    sku_id: str
    catalog_item_id: str
    currency: str
    is_purchasable: bool
    terms: list[Term]
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: dict) -> Availability:
        terms = [
            Term(t.get("id", ""), t.get("duration", ""), t.get("billingCycle", ""), t.get("description", ""))
            for t in data.get("terms") or []
        ]
        return cls(
            id=data["id"],
            product_id=data.get("productId", ""),
            sku_id=data.get("skuId", ""),
            catalog_item_id=data.get("catalogItemId", ""),
            currency=(data.get("defaultCurrency") or {}).get("code", ""),
            is_purchasable=bool(data.get("isPurchasable", True)),
            terms=terms,
            raw=data,
        )


@dataclass(frozen=True)
class CartLine:
    catalog_item_id: str
    quantity: int
    term_duration: str
    billing_cycle: str
    friendly_name: str = ""

    def to_json(self, index: int) -> dict:
        return {
            "id": index,
            "catalogItemId": self.catalog_item_id,
            "quantity": self.quantity,
            "termDuration": self.term_duration,
            "billingCycle": self.billing_cycle,
            "friendlyName": self.friendly_name,
            "provisioningContext": {},
        }


@dataclass(frozen=True)
class Cart:
    id: str
    status: str
    line_errors: list[dict]
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: dict) -> Cart:
        errors = [line["error"] for line in data.get("lineItems") or [] if line.get("error")]
        return cls(data["id"], data.get("status", ""), errors, data)


@dataclass(frozen=True)
class OrderLine:
    line_item_number: int
    offer_id: str
    subscription_id: str
    quantity: int
    term_duration: str
    price: Decimal | None


@dataclass(frozen=True)
class Order:
    id: str
    status: str
    currency: str
    lines: list[OrderLine]
    created_at: datetime | None
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: dict) -> Order:
        lines = [
            OrderLine(
                line_item_number=int(line.get("lineItemNumber", 0)),
                offer_id=line.get("offerId", ""),
                subscription_id=line.get("subscriptionId", ""),
                quantity=int(line.get("quantity", 0)),
                term_duration=line.get("termDuration", ""),
                price=parse_decimal((line.get("pricing") or {}).get("extendedPrice")),
            )
            for line in data.get("lineItems") or []
        ]
        return cls(
            data["id"],
            data.get("status", ""),
            data.get("currencyCode", ""),
            lines,
            parse_datetime(data.get("creationDate")),
            data,
        )


@dataclass(frozen=True)
class CheckoutResult:
    orders: list[Order]
    order_errors: list[dict]
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: dict) -> CheckoutResult:
        return cls([Order.from_json(o) for o in data.get("orders") or []], data.get("orderErrors") or [], data)


@dataclass(frozen=True)
class Subscription:
    id: str
    offer_id: str
    offer_name: str
    friendly_name: str
    quantity: int
    status: str
    auto_renew_enabled: bool
    term_duration: str
    billing_cycle: str
    commitment_end: datetime | None
    cancellation_allowed_until: datetime | None
    order_id: str
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: dict) -> Subscription:
        return cls(
            id=data["id"],
            offer_id=data.get("offerId", ""),
            offer_name=data.get("offerName", ""),
            friendly_name=data.get("friendlyName", ""),
            quantity=int(data.get("quantity", 0)),
            status=data.get("status", ""),
            auto_renew_enabled=bool(data.get("autoRenewEnabled", False)),
            term_duration=data.get("termDuration", ""),
            billing_cycle=data.get("billingCycle", ""),
            commitment_end=_commitment_end(data),
            cancellation_allowed_until=parse_datetime(data.get("cancellationAllowedUntilDate")),
            order_id=data.get("orderId", ""),
            raw=data,
        )


def _commitment_end(data: dict) -> datetime | None:
    """``commitmentEndDate`` is the term's last day; stored as that day's last second (``nce.end_of_last_day``),
    so every surface derives the same "term ends", "renews on" and "last day to reduce" from it."""
    last_day = parse_datetime(data.get("commitmentEndDate"))
    if last_day is not None:
        return nce.end_of_last_day(last_day.date() if last_day.tzinfo is None else last_day.astimezone(UTC).date())
    return parse_datetime(data.get("commitmentEndDateTime"))


@dataclass(frozen=True)
class Transition:
    from_subscription_id: str
    to_subscription_id: str
    to_catalog_item_id: str
    quantity: int
    status: str
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: dict) -> Transition:
        events = data.get("events") or []
        return cls(
            from_subscription_id=data.get("fromSubscriptionId", ""),
            to_subscription_id=data.get("toSubscriptionId", ""),
            to_catalog_item_id=data.get("toCatalogItemId", ""),
            quantity=int(data.get("quantity", 0)),
            status=events[-1].get("status", "") if events else data.get("status", ""),
            raw=data,
        )


@dataclass(frozen=True)
class FraudEvent:
    event_id: str
    subscription_id: str
    customer_tenant_id: str
    event_type: str
    status: str
    severity: str
    hit_count: int
    first_occurrence: datetime | None
    last_occurrence: datetime | None
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: dict) -> FraudEvent:
        # Fraud events are stringly typed (reference §2.8): hitCount is "10".
        try:
            hits = int(data.get("hitCount") or 0)
        except ValueError:
            hits = 0
        return cls(
            event_id=data["eventId"],
            subscription_id=data.get("subscriptionId", ""),
            customer_tenant_id=data.get("customerTenantId", ""),
            event_type=data.get("eventType", ""),
            status=data.get("eventStatus", ""),
            severity=data.get("severity", ""),
            hit_count=hits,
            first_occurrence=parse_datetime(data.get("firstOccurrence")),
            last_occurrence=parse_datetime(data.get("lastOccurrence")),
            raw=data,
        )

