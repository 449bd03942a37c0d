"""Partner Center REST v1 (reference §2): customers, agreements, catalog, carts and orders,
subscriptions, transitions, application consent, Azure fraud events and billing line items.

Writes take a ``request_id`` (the ``MS-RequestId``) that the caller stores with its operation so
retries and task redeliveries replay instead of repeating. Collections are iterated lazily,
following ``links.next`` with its ``MS-ContinuationToken`` header.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from core.registry import Category

from .auth import PC_SCOPE, TokenProvider
from .base import ApiBase
from .disclosure import PersonalData, Purpose
from .errors import NotFound
from .http import MicrosoftHttp
from .resources import (
    Address,
    Agreement,
    Availability,
    Cart,
    CartLine,
    CheckoutResult,
    Customer,
    FraudEvent,
    Order,
    Product,
    Sku,
    Subscription,
    Transition,
)

MCA = "MicrosoftCustomerAgreement"


class PartnerCenter(ApiBase):
    # Partner Center answers a repeated MS-RequestId with the first request's outcome.
    dedupes_writes_by_request_id = True

    def __init__(
        self,
        *,
        http: MicrosoftHttp,
        base_url: str,
        tokens: TokenProvider,
        partner_tenant_id: str,
        client_id: str,
        pricing_url: str | None = None,
    ):
        super().__init__(http=http, base_url=base_url)
        self.tokens = tokens
        self.partner_tenant_id = partner_tenant_id
        self.client_id = client_id
        self.pricing_url = (pricing_url or base_url).rstrip("/")

    # -- plumbing -------------------------------------------------------------------------------
    def _app_token(self) -> str:
        return self.tokens.app_token(tenant_id=self.partner_tenant_id, scope=PC_SCOPE)

    def _user_token(self) -> str:
        return self.tokens.user_token(tenant_id=self.partner_tenant_id, scope=PC_SCOPE)

    def _url(self, path: str) -> str:
        return f"{self.base_url}/v1{path}"

    def _call(self, method: str, path: str, operation: str, *, app_user: bool = False, **kwargs) -> Any:
        response = self._send(
            method,
            self._url(path),
            token=self._user_token if app_user else self._app_token,
            operation=f"partner_center.{operation}",
            **kwargs,
        )
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def _iterate(self, path: str, operation: str, params: dict | None = None) -> Iterator[dict]:
        """Every item of a paged collection, one page in memory at a time."""
        page = self._call("GET", path, operation, params=params)
        while True:
            yield from page.get("items") or []
            following = (page.get("links") or {}).get("next")
            if not following:
                return
            headers = {h["key"]: h["value"] for h in following.get("headers") or []}
            response = self._send(
                "GET",
                self._url(following["uri"]),
                token=self._app_token,
                operation=f"partner_center.{operation}",
                headers=headers,
            )
            page = response.json()

    # -- customers ------------------------------------------------------------------------------
    def domain_available(self, domain: str) -> bool:
        """``HEAD /domains/{d}``: 200 means taken, 404 means available (reference §2.2)."""
        try:
            self._call("HEAD", f"/domains/{quote(domain)}", "domains.check")
        except NotFound:
            return True
        return False

    def create_customer(
        self,
        *,
        organization,
        request_id: str,
        domain: str,
        company_name: str,
        email: str,
        address: Address,
        culture: str = "en-US",
        language: str = "en",
        registration_number: str | None = None,
    ) -> Customer:
        company: dict[str, Any] = {"domain": domain}
        if registration_number:
            company["organizationRegistrationNumber"] = registration_number
        body = {
            "enableGDAPByDefault": False,
            "companyProfile": company,
            "billingProfile": {
                "email": email,
                "culture": culture,
                "language": language,
                "companyName": company_name,
                "defaultAddress": address.to_json(),
            },
        }
        personal = PersonalData.of(
            [Category.IDENTITY, Category.CONTACT, Category.BILLING, Category.TENANT],
            purpose=Purpose.PROVISIONING,
            organization=organization,
        )
        data = self._call("POST", "/customers", "customers.create", json=body, request_id=request_id, personal=personal)
        return Customer.from_json(data)

    def get_customer(self, customer_id: str) -> Customer:
        return Customer.from_json(self._call("GET", f"/customers/{customer_id}", "customers.get"))

    def iter_customers(self, *, page_size: int = 200) -> Iterator[Customer]:
        for item in self._iterate("/customers", "customers.list", {"size": page_size}):
            yield Customer.from_json(item)

    # -- Microsoft Customer Agreement ------------------------------------------------------------
    def mca_template_id(self) -> str:
        data = self._call("GET", "/agreements", "agreements.templates", params={"agreementType": MCA})
        return data["items"][0]["templateId"]

    def accept_customer_agreement(
        self,
        *,
        organization,
        request_id: str,
        customer_id: str,
        first_name: str,
        last_name: str,
        email: str,
        phone_number: str = "",
        date_agreed: datetime | None = None,
        template_id: str | None = None,
    ) -> Agreement:
        contact = {"firstName": first_name, "lastName": last_name, "email": email}
        if phone_number:
            contact["phoneNumber"] = phone_number
        body = {
            "primaryContact": contact,
            "templateId": template_id or self.mca_template_id(),
            "dateAgreed": (date_agreed or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "type": MCA,
        }
        personal = PersonalData.of(
            [Category.IDENTITY, Category.CONTACT], purpose=Purpose.PROVISIONING, organization=organization
        )
        data = self._call(
            "POST",
            f"/customers/{customer_id}/agreements",
            "agreements.accept",
            json=body,
            request_id=request_id,
            personal=personal,
        )
        return Agreement.from_json(data)

    def list_customer_agreements(self, customer_id: str) -> list[Agreement]:
        data = self._call("GET", f"/customers/{customer_id}/agreements", "agreements.list")
        return [Agreement.from_json(item) for item in data.get("items") or []]

    # -- catalog ---------------------------------------------------------------------------------
    def list_products(
        self, *, country: str, target_view: str = "OnlineServices", target_segment: str | None = None
    ) -> list[Product]:
        params = {"country": country, "targetView": target_view}
        if target_segment:
            params["targetSegment"] = target_segment
        return [Product.from_json(i) for i in self._iterate("/products", "catalog.products", params)]

    def get_product(self, *, product_id: str, country: str) -> Product:
        return Product.from_json(
            self._call("GET", f"/products/{product_id}", "catalog.product", params={"country": country})
        )

    def list_skus(self, *, product_id: str, country: str) -> list[Sku]:
        items = self._iterate(f"/products/{product_id}/skus", "catalog.skus", {"country": country})
        return [Sku.from_json(i) for i in items]

    def get_sku(self, *, product_id: str, sku_id: str, country: str) -> Sku:
        data = self._call("GET", f"/products/{product_id}/skus/{sku_id}", "catalog.sku", params={"country": country})
        return Sku.from_json(data)

    def list_availabilities(
        self, *, product_id: str, sku_id: str, country: str, target_segment: str | None = None
    ) -> list[Availability]:
        params = {"country": country}
        if target_segment:
            params["targetSegment"] = target_segment
        items = self._iterate(f"/products/{product_id}/skus/{sku_id}/availabilities", "catalog.availabilities", params)
        return [Availability.from_json(i) for i in items]

    def get_availability(self, *, product_id: str, sku_id: str, availability_id: str, country: str) -> Availability:
        data = self._call(
            "GET",
            f"/products/{product_id}/skus/{sku_id}/availabilities/{availability_id}",
            "catalog.availability",
            params={"country": country},
        )
        return Availability.from_json(data)

    def iter_price_sheet(self, *, market: str = "US", view: str = "updatedlicensebased") -> Iterator[dict]:
        """The New Commerce licence price list (CSV) as dict rows. Prices stay strings: parse with Decimal."""
        url = f"{self.pricing_url}/v1.0/sales/pricesheets(Market='{market}',PricesheetView='{view}')/$value"
        response = self._send("GET", url, token=self._app_token, operation="partner_center.catalog.prices")
        yield from csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")))

    # -- carts and orders -----------------------------------------------------------------------
    def create_cart(self, *, customer_id: str, lines: list[CartLine], request_id: str) -> Cart:
        body = {
            "lineItems": [line.to_json(i) for i, line in enumerate(lines)],
            "partnerOnRecordAttestationAccepted": True,
        }
        data = self._call("POST", f"/customers/{customer_id}/carts", "carts.create", json=body, request_id=request_id)
        return Cart.from_json(data)

    def get_cart(self, *, customer_id: str, cart_id: str) -> Cart:
        return Cart.from_json(self._call("GET", f"/customers/{customer_id}/carts/{cart_id}", "carts.get"))

    def checkout_cart(self, *, customer_id: str, cart_id: str, request_id: str) -> CheckoutResult:
        data = self._call(
            "POST", f"/customers/{customer_id}/carts/{cart_id}/checkout", "carts.checkout", request_id=request_id
        )
        return CheckoutResult.from_json(data)

    def get_order(self, *, customer_id: str, order_id: str) -> Order:
        return Order.from_json(self._call("GET", f"/customers/{customer_id}/orders/{order_id}", "orders.get"))

    def list_orders(self, *, customer_id: str) -> list[Order]:
        return [Order.from_json(i) for i in self._iterate(f"/customers/{customer_id}/orders", "orders.list")]

    def order_provisioning_status(self, *, customer_id: str, order_id: str) -> list[dict]:
        data = self._call(
            "GET", f"/customers/{customer_id}/orders/{order_id}/provisioningstatus", "orders.provisioning_status"
        )
        return data.get("items") or []

    # -- subscriptions ----------------------------------------------------------------------------
    def get_subscription(self, *, customer_id: str, subscription_id: str) -> Subscription:
        data = self._call("GET", f"/customers/{customer_id}/subscriptions/{subscription_id}", "subscriptions.get")
        return Subscription.from_json(data)

    def iter_subscriptions(self, *, customer_id: str, order_id: str | None = None) -> Iterator[Subscription]:
        params = {"order_id": order_id} if order_id else None
        for item in self._iterate(f"/customers/{customer_id}/subscriptions", "subscriptions.list", params):
            yield Subscription.from_json(item)

    def update_subscription(
        self, *, customer_id: str, subscription_id: str, request_id: str, changes: dict, operation: str = "update"
    ) -> Subscription:
        """GET the whole subscription, apply ``changes``, PATCH it back (reference §2.5).

        ``autoRenewEnabled`` is always sent explicitly: Partner Center turns auto-renew off when it
        is omitted, so a quantity change must never silently cancel a renewal.
        """
        current = self.get_subscription(customer_id=customer_id, subscription_id=subscription_id).raw
        body = {**current, **changes}
        body["autoRenewEnabled"] = bool(changes.get("autoRenewEnabled", current.get("autoRenewEnabled", False)))
        data = self._call(
            "PATCH",
            f"/customers/{customer_id}/subscriptions/{subscription_id}",
            f"subscriptions.{operation}",
            json=body,
            request_id=request_id,
        )
        if data is None:  # 202 Accepted: the change is applied asynchronously
            return self.get_subscription(customer_id=customer_id, subscription_id=subscription_id)
        return Subscription.from_json(data)

    def set_quantity(self, *, customer_id: str, subscription_id: str, quantity: int, request_id: str) -> Subscription:
        return self.update_subscription(
            customer_id=customer_id,
            subscription_id=subscription_id,
            request_id=request_id,
            changes={"quantity": quantity},
            operation="quantity",
        )

    def set_auto_renew(self, *, customer_id: str, subscription_id: str, enabled: bool, request_id: str) -> Subscription:
        return self.update_subscription(
            customer_id=customer_id,
            subscription_id=subscription_id,
            request_id=request_id,
            changes={"autoRenewEnabled": enabled},
            operation="auto_renew",
        )

    def suspend_subscription(self, *, customer_id: str, subscription_id: str, request_id: str) -> Subscription:
        """Suspension blocks access but Microsoft keeps billing the partner, and turns auto-renew off."""
        return self.update_subscription(
            customer_id=customer_id,
            subscription_id=subscription_id,
            request_id=request_id,
            changes={"status": "suspended", "autoRenewEnabled": False},
            operation="suspend",
        )

    def reactivate_subscription(
        self, *, customer_id: str, subscription_id: str, request_id: str, auto_renew: bool = True
    ) -> Subscription:
        return self.update_subscription(
            customer_id=customer_id,
            subscription_id=subscription_id,
            request_id=request_id,
            changes={"status": "active", "autoRenewEnabled": auto_renew},
            operation="reactivate",
        )

    def cancel_subscription(self, *, customer_id: str, subscription_id: str, request_id: str) -> Subscription:
        """NCE cancellation (``status: deleted``); only inside the 168-hour window, else CancellationWindowClosed."""
        return self.update_subscription(
            customer_id=customer_id,
            subscription_id=subscription_id,
            request_id=request_id,
            changes={"status": "deleted", "autoRenewEnabled": False},
            operation="cancel",
        )

    # -- upgrades ---------------------------------------------------------------------------------
    def transition_eligibilities(
        self, *, customer_id: str, subscription_id: str, eligibility_type: str = "immediate"
    ) -> list[dict]:
        data = self._call(
            "GET",
            f"/customers/{customer_id}/subscriptions/{subscription_id}/transitionEligibilities",
            "transitions.eligibilities",
            params={"eligibilityType": eligibility_type},
        )
        return data.get("items") or []

    def create_transition(
        self,
        *,
        customer_id: str,
        subscription_id: str,
        request_id: str,
        from_catalog_item_id: str,
        to_catalog_item_id: str,
        quantity: int,
        term_duration: str,
        billing_cycle: str,
        transition_type: str = "transition_only",
        to_subscription_id: str | None = None,
    ) -> Transition:
        body = {
            "fromCatalogItemId": from_catalog_item_id,
            "fromSubscriptionId": subscription_id,
            "toCatalogItemId": to_catalog_item_id,
            "quantity": quantity,
            "termDuration": term_duration,
            "billingCycle": billing_cycle,
            "transitionType": transition_type,
        }
        if to_subscription_id:
            body["toSubscriptionId"] = to_subscription_id
        data = self._call(
            "POST",
            f"/customers/{customer_id}/subscriptions/{subscription_id}/transitions",
            "transitions.create",
            json=body,
            request_id=request_id,
        )
        return Transition.from_json(data)

    def list_transitions(self, *, customer_id: str, subscription_id: str) -> list[Transition]:
        data = self._call(
            "GET", f"/customers/{customer_id}/subscriptions/{subscription_id}/transitions", "transitions.list"
        )
        return [Transition.from_json(i) for i in data.get("items") or []]

    # -- application consent ----------------------------------------------------------------------
    def create_application_consent(
        self, *, customer_id: str, request_id: str, grants: list[tuple[str, str]], application_id: str | None = None
    ) -> dict:
        """Consent the partner app in the customer tenant so app-only Graph calls work there.
        ``grants`` is [(enterpriseApplicationId, "Scope1,Scope2")]."""
        body = {
            "applicationId": application_id or self.client_id,
            "applicationGrants": [{"enterpriseApplicationId": app, "scope": scope} for app, scope in grants],
        }
        return self._call(
            "POST",
            f"/customers/{customer_id}/applicationconsents",
            "consents.create",
            json=body,
            request_id=request_id,
        )

    def list_application_consents(self, *, customer_id: str) -> list[dict]:
        data = self._call("GET", f"/customers/{customer_id}/applicationconsents", "consents.list")
        return data.get("items") or [] if isinstance(data, dict) else data or []

    def list_azure_entitlements(self, *, customer_id: str, subscription_id: str) -> list[str]:
        """The Azure subscription ids (entitlements) under an Azure plan subscription."""
        data = self._call(
            "GET", f"/customers/{customer_id}/subscriptions/{subscription_id}/azureEntitlements",
            "subscriptions.azure_entitlements",
        )
        items = data.get("items") or [] if isinstance(data, dict) else data or []
        return [str(item["id"]) for item in items if item.get("id")]

    # -- Azure fraud events (App+User only) -------------------------------------------------------
    def list_fraud_events(
        self,
        *,
        status: str | None = None,
        subscription_id: str | None = None,
        event_type: str | None = None,
        new_model: bool = True,
    ) -> list[FraudEvent]:
        params = {
            k: v
            for k, v in {"EventStatus": status, "SubscriptionId": subscription_id, "EventType": event_type}.items()
            if v
        }
        headers = {"X-NewEventsModel": "true"} if new_model else None
        data = self._call("GET", "/fraudEvents", "fraud_events.list", app_user=True, params=params, headers=headers)
        return [FraudEvent.from_json(e) for e in data or []]

    def update_fraud_events(
        self,
        *,
        subscription_id: str,
        event_ids: list[str],
        status: str,
        request_id: str,
        resolved_reason: str | None = None,
    ) -> list[FraudEvent]:
        # The documented body, with its PascalCase names (update-fraud-events-status).
        body: dict[str, Any] = {"EventIds": event_ids, "EventStatus": status}
        if resolved_reason:
            body["ResolvedReason"] = resolved_reason
        data = self._call(
            "POST",
            f"/fraudEvents/subscription/{subscription_id}/status",
            "fraud_events.update",
            app_user=True,
            json=body,
            request_id=request_id,
            headers={"X-NewEventsModel": "true"},
        )
        return [FraudEvent.from_json(e) for e in data or []]

    # -- billing reconciliation -------------------------------------------------------------------
    def iter_unbilled_line_items(
        self, *, currency: str = "USD", period: str = "current", page_size: int = 2000
    ) -> Iterator[dict]:
        params = {
            "provider": "onetime",
            "invoicelineitemtype": "billinglineitems",
            "currencycode": currency,
            "period": period,
            "size": page_size,
        }
        yield from self._iterate("/invoices/unbilled/lineitems", "billing.unbilled_line_items", params)

    def iter_billed_line_items(self, *, invoice_id: str, page_size: int = 2000) -> Iterator[dict]:
        params = {"provider": "onetime", "invoicelineitemtype": "billinglineitems", "size": page_size}
        yield from self._iterate(f"/invoices/{invoice_id}/lineitems", "billing.billed_line_items", params)

    def list_invoices(self) -> list[dict]:
        return list(self._iterate("/invoices", "billing.invoices"))
