"""Shared steps for the Microsoft client tests: a customer with agreement and consent, a purchase."""

from __future__ import annotations

import uuid

from licensing.microsoft.client import MicrosoftClient
from licensing.microsoft.resources import Address, CartLine

GRAPH_APP = "00000003-0000-0000-c000-000000000000"
GRAPH_GRANTS = [(GRAPH_APP, "User.ReadWrite.All,Directory.Read.All,LicenseAssignment.ReadWrite.All")]
BASIC = ("CFQ7TTC0LH18", "0001")  # Microsoft 365 Business Basic


def rid() -> str:
    return str(uuid.uuid4())


def new_customer(ms: MicrosoftClient, organization, *, consent: bool = True, mca: bool = True):
    pc = ms.partner_center
    domain = f"t{uuid.uuid4().hex[:10]}.onmicrosoft.com"
    assert pc.domain_available(domain)
    customer = pc.create_customer(
        organization=organization,
        request_id=rid(),
        domain=domain,
        company_name="Contoso Test Ltd",
        email="jane.doe@example.com",
        address=Address(
            "Jane", "Doe", "1 Main Street", "Redmond", "98052", "US", state="WA", phone_number="4255550101"
        ),
    )
    assert not pc.domain_available(domain)
    if mca:
        pc.accept_customer_agreement(
            organization=organization, request_id=rid(), customer_id=customer.id,
            first_name="Jane", last_name="Doe", email="jane.doe@example.com",
        )
    if consent:
        pc.create_application_consent(customer_id=customer.id, request_id=rid(), grants=GRAPH_GRANTS)
    return customer


def basic_offer(ms: MicrosoftClient):
    availability = ms.partner_center.list_availabilities(product_id=BASIC[0], sku_id=BASIC[1], country="US")[0]
    sku = ms.partner_center.get_sku(product_id=BASIC[0], sku_id=BASIC[1], country="US")
    return availability, sku


def buy(ms: MicrosoftClient, customer_id: str, quantity: int = 5, term: str = "P1Y", cycle: str = "monthly"):
    availability, _ = basic_offer(ms)
    cart = ms.partner_center.create_cart(
        customer_id=customer_id, request_id=rid(),
        lines=[CartLine(availability.catalog_item_id, quantity, term, cycle, "Basic")],
    )
    result = ms.partner_center.checkout_cart(customer_id=customer_id, cart_id=cart.id, request_id=rid())
    assert not result.order_errors
    order = result.orders[0]
    return ms.partner_center.get_subscription(customer_id=customer_id, subscription_id=order.lines[0].subscription_id)
