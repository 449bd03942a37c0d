"""Deterministic seed data: the partner, two demo customer tenants with users, purchases, licence
assignments, an active GDAP relationship and Azure fraud events."""

import json
import random
import uuid
from datetime import timedelta

from .catalog import Catalog
from .config import ADMIN_AGENT_ID, ADMIN_AGENT_UPN, PARTNER_DOMAIN, PARTNER_NAME, PartnerConfig
from .directory import insert_user, insert_users
from .graph.common import DIRECTORY_READERS, LICENSE_ADMIN, USER_ADMIN
from .partner_center import nce
from .partner_center.customers import DEFAULT_CONSENT_GRANTS, MCA_TEMPLATE_ID, create_customer_tenant
from .partner_center.fraud import new_event
from .state import State, iso

FIRST_NAMES = (
    "Adele", "Alex", "Amara", "Ana", "Andre", "Aria", "Ben", "Bianca", "Carlos", "Chen", "Chloe",
    "Daniel", "Deepa", "Diego", "Elena", "Emeka", "Emma", "Fatima", "Felix", "Grace", "Hana",
    "Hiro", "Ines", "Isaac", "Jamal", "Jana", "Jonas", "Julia", "Kai", "Keiko", "Lars", "Layla",
    "Leo", "Lina", "Lucas", "Maria", "Mateo", "Maya", "Mei", "Miguel", "Nadia", "Noah", "Olga",
    "Omar", "Priya", "Rafael", "Rosa", "Sam", "Sara", "Sofia", "Tariq", "Tom", "Uma", "Victor",
    "Wei", "Yara", "Yusuf", "Zoe", "Nina", "Oscar"
)
LAST_NAMES = (
    "Adams", "Ahmed", "Andersen", "Bauer", "Becker", "Brown", "Chen", "Costa", "Davis", "Dubois",
    "Evans", "Fischer", "Garcia", "Gonzalez", "Hansen", "Hoffmann", "Ito", "Jensen", "Johnson",
    "Kim", "Kowalski", "Lee", "Lopez", "Martin", "Meyer", "Moreau", "Muller", "Nakamura", "Nguyen",
    "Novak", "Okafor", "Olsen", "Park", "Patel", "Petrov", "Rossi", "Santos", "Schmidt", "Silva",
    "Singh", "Smith", "Suzuki", "Tanaka", "Taylor", "Thomas", "Walker", "Wang", "Weber", "Wilson",
    "Yamamoto", "Young", "Zhang", "Ali", "Kaur", "Haddad", "Moretti", "Larsen", "Fernandez",
    "Ivanova"
)
DEPARTMENTS = ("Sales", "Finance", "Engineering", "Operations", "Marketing", "Support", "HR", "Legal")
TITLES = ("Analyst", "Manager", "Specialist", "Engineer", "Coordinator", "Director", "Associate")
COUNTRIES = ("US", "US", "US", "CA", "GB", "DE", "FR", "NL")

FABRIKAM_ID = "3f2c7b1e-8d4a-4c6e-9b0f-1a2d3e4f5a6b"
NORTHWIND_ID = "7e9d1c3b-2a4f-4e8d-b6c5-0f1e2d3c4b5a"
DEMO_CUSTOMERS = (
    (FABRIKAM_ID, "fabrikamdemo.onmicrosoft.com", "Fabrikam Inc", 300, True),
    (NORTHWIND_ID, "northwinddemo.onmicrosoft.com", "Northwind Traders", 250, False),
)


def _ascii(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum())


def generate_users(rng: random.Random, *, domain: str, count: int, start: int, now) -> list[dict]:
    """`count` users with realistic names; some never signed in or signed in months ago, some
    without usageLocation (so licence assignment fails for them)."""
    users = []
    for n in range(start, start + count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        nickname = f"{_ascii(first)}.{_ascii(last)}{n}"
        created = now - timedelta(days=rng.randint(30, 1500))
        roll = rng.random()
        sign_in = None
        if roll < 0.65:
            sign_in = now - timedelta(hours=rng.randint(1, 24 * 30))
        elif roll < 0.85:
            sign_in = now - timedelta(days=rng.randint(90, 400))
        activity = None
        if sign_in is not None:
            request_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            activity = {"lastSignInDateTime": iso(sign_in), "lastSignInRequestId": request_id,
                        "lastNonInteractiveSignInDateTime": iso(sign_in + timedelta(minutes=5)),
                        "lastNonInteractiveSignInRequestId": request_id,
                        "lastSuccessfulSignInDateTime": iso(sign_in),
                        "lastSuccessfulSignInRequestId": request_id}
        users.append({
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "businessPhones": [f"+1 425 555 {rng.randint(1000, 9999)}"],
            "displayName": f"{first} {last}", "givenName": first, "surname": last,
            "jobTitle": f"{rng.choice(DEPARTMENTS)} {rng.choice(TITLES)}",
            "department": rng.choice(DEPARTMENTS), "mail": f"{nickname}@{domain}",
            "mobilePhone": None, "officeLocation": None, "preferredLanguage": "en-US",
            "userPrincipalName": f"{nickname}@{domain}", "mailNickname": nickname,
            "accountEnabled": rng.random() > 0.05,
            "usageLocation": None if rng.random() < 0.1 else rng.choice(COUNTRIES),
            "createdDateTime": iso(created), "assignedLicenses": [], "signInActivity": activity,
        })
    return users


def add_users(state: State, tenant_id: str, count: int, now, seed: int = 1) -> int:
    """Append `count` generated users to a tenant in one statement (control API)."""
    domain = state.row("SELECT domain FROM tenants WHERE id = ?", (tenant_id,))["domain"]
    start = state.row("SELECT COALESCE(MAX(seq), 0) AS n FROM users")["n"] + 1
    with state.transaction():
        insert_users(state, tenant_id, generate_users(random.Random(f"{seed}:{start}"), domain=domain,
                                                      count=count, start=start, now=now))
    return count


def _buy(state, catalog: Catalog, customer_id: str, item: str, quantity: int, term: str, cycle: str,
         at) -> dict:
    order_id = uuid.uuid4().hex[:12]
    sub = nce.purchase(state, catalog, customer_id=customer_id, offer=catalog.offer(item),
                       quantity=quantity, term=term, billing_cycle=cycle, friendly_name="",
                       order_id=order_id, at=at, status="active")
    state.execute("INSERT INTO orders (id, customer_id, status, ready_at, doc) VALUES (?, ?, 'completed',"
                  " ?, ?)", (order_id, customer_id, iso(at), json.dumps({
                      "id": order_id, "alternateId": order_id, "referenceCustomerId": customer_id,
                      "billingCycle": cycle, "currencyCode": "USD", "currencySymbol": "$",
                      "lineItems": [{"lineItemNumber": 0, "offerId": item, "subscriptionId": sub["id"],
                                     "termDuration": term, "transactionType": "New",
                                     "friendlyName": sub["friendlyName"], "quantity": quantity}],
                      "creationDate": iso(at), "status": "completed", "transactionType": "UserPurchase",
                      "links": {}, "attributes": {"objectType": "Order"}})))
    return sub


def _assign(state, tenant_id: str, sku_id: str, limit: int) -> None:
    for row in state.rows("SELECT doc FROM users WHERE tenant_id = ? AND account_enabled = 1 ORDER BY seq"
                          " LIMIT ?", (tenant_id, limit * 2)):
        doc = json.loads(row["doc"])
        if not doc.get("usageLocation") or limit == 0:
            continue
        doc["assignedLicenses"].append({"disabledPlans": [], "skuId": sku_id})
        state.execute("UPDATE users SET doc = ? WHERE tenant_id = ? AND id = ?",
                      (json.dumps(doc), tenant_id, doc["id"]))
        state.execute("INSERT INTO user_licenses (tenant_id, user_id, sku_id, disabled_plans)"
                      " VALUES (?, ?, ?, '[]')", (tenant_id, doc["id"], sku_id))
        limit -= 1


def seed(state: State, catalog: Catalog, partner: PartnerConfig) -> None:
    now = state.now()
    rng = random.Random(20240101)
    with state.transaction():
        state.execute("INSERT INTO tenants (id, domain, display_name, kind) VALUES (?, ?, ?, 'partner')",
                      (partner.tenant_id, PARTNER_DOMAIN, PARTNER_NAME))
        insert_user(state, partner.tenant_id, {
            "id": ADMIN_AGENT_ID, "displayName": "Admin Agent", "givenName": "Admin", "surname": "Agent",
            "userPrincipalName": ADMIN_AGENT_UPN, "mail": ADMIN_AGENT_UPN, "mailNickname": "adminagent",
            "accountEnabled": True, "usageLocation": "US", "createdDateTime": iso(now),
            "businessPhones": [], "assignedLicenses": []})
        for tenant_id, domain, name, users, consented in DEMO_CUSTOMERS:
            profile = {"email": f"billing@{domain}", "culture": "en-US", "language": "en",
                       "companyName": name, "defaultAddress": {
                           "firstName": "Jane", "lastName": "Doe", "addressLine1": "One Microsoft Way",
                           "city": "Redmond", "state": "WA", "postalCode": "98052", "country": "US",
                           "phoneNumber": "4255550101"}}
            create_customer_tenant(state, tenant_id=tenant_id, domain=domain, company_name=name,
                                   billing_profile=profile, now=now - timedelta(days=400), rng=rng)
            insert_users(state, tenant_id, generate_users(rng, domain=domain, count=users, start=1,
                                                          now=now))
            state.execute("INSERT INTO agreements (customer_id, doc) VALUES (?, ?)", (tenant_id, json.dumps({
                "primaryContact": {"firstName": "Jane", "lastName": "Doe", "email": f"jane@{domain}"},
                "templateId": MCA_TEMPLATE_ID, "dateAgreed": iso(now - timedelta(days=400)),
                "type": "MicrosoftCustomerAgreement", "attributes": {"objectType": "Agreement"}})))
            if consented:
                state.execute("INSERT INTO consents (tenant_id, app_id, doc) VALUES (?, ?, ?)",
                              (tenant_id, partner.client_id, json.dumps({
                                  "applicationId": partner.client_id,
                                  "applicationGrants": DEFAULT_CONSENT_GRANTS,
                                  "displayName": PARTNER_NAME})))
        premium = _buy(state, catalog, FABRIKAM_ID, "CFQ7TTC0LCHC:0001:CFQ7TTC0KFCP", 25, "P1Y", "monthly",
                       now - timedelta(days=75))
        _buy(state, catalog, FABRIKAM_ID, "CFQ7TTC0LH16:0001:CFQ7TTC0K8P5", 10, "P1M", "monthly",
             now - timedelta(days=20))
        azure = _buy(state, catalog, FABRIKAM_ID, "DZH318Z0BPS6:0001:DZH318Z0BXWC", 1, "", "monthly",
                     now - timedelta(days=40))
        basic = _buy(state, catalog, NORTHWIND_ID, "CFQ7TTC0LH18:0001:CFQ7TTC0K971", 20, "P1Y", "annual",
                     now - timedelta(days=200))
        _assign(state, FABRIKAM_ID, premium["provisioningId"], 20)
        _assign(state, NORTHWIND_ID, basic["provisioningId"], 12)
        for event_type, status in (("NetworkConnectionsToCryptoMiningPools", "Active"),
                                   ("UsageAnomalyDetection", "Investigating")):
            new_event(state, partner_tenant_id=partner.tenant_id, customer_id=FABRIKAM_ID,
                      azure_subscription_id=azure["azureEntitlementId"], event_type=event_type,
                      status=status, at=now - timedelta(days=2), rng=rng)
        relationship_id = f"{FABRIKAM_ID}-{uuid.UUID(int=rng.getrandbits(128), version=4)}"
        activated = now - timedelta(days=30)
        state.execute("INSERT INTO gdap_relationships (id, customer_tenant_id, display_name, doc)"
                      " VALUES (?, ?, ?, ?)", (relationship_id, FABRIKAM_ID, "Fabrikam-Portal-Std", json.dumps({
                          "id": relationship_id, "displayName": "Fabrikam-Portal-Std", "duration": "P730D",
                          "customer": {"tenantId": FABRIKAM_ID, "displayName": "Fabrikam Inc"},
                          "accessDetails": {"unifiedRoles": [{"roleDefinitionId": r} for r in
                                                             (DIRECTORY_READERS, LICENSE_ADMIN, USER_ADMIN)]},
                          "status": "active", "autoExtendDuration": "P180D",
                          "createdDateTime": iso(activated), "lastModifiedDateTime": iso(activated),
                          "activatedDateTime": iso(activated),
                          "endDateTime": iso(activated + timedelta(days=730)), "version": 1})))
        state.execute("INSERT INTO gdap_assignments (id, relationship_id, doc) VALUES (?, ?, ?)",
                      (str(uuid.UUID(int=rng.getrandbits(128), version=4)), relationship_id, json.dumps({
                          "accessContainer": {"accessContainerId": str(uuid.UUID(int=rng.getrandbits(128))),
                                              "accessContainerType": "securityGroup"},
                          "accessDetails": {"unifiedRoles": [{"roleDefinitionId": LICENSE_ADMIN},
                                                             {"roleDefinitionId": USER_ADMIN}]},
                          "status": "active", "createdDateTime": iso(activated),
                          "lastModifiedDateTime": iso(activated), "version": 1})))
        state.execute("UPDATE gdap_assignments SET doc = json_set(doc, '$.id', id)")
        nce.settle(state, catalog, now)
        state.set_meta("seeded", True)
