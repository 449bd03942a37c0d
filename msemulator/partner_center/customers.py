"""Customers, domain availability, MCA attestation and application consent (reference §2.2, §2.10)."""

import json
import random
import string

from werkzeug.routing import Rule

from ..config import PARTNER_NAME
from ..directory import insert_user
from ..identity import GRAPH_APP_ID
from ..responses import empty_response, field, json_response, pc_error, read_json
from ..state import iso
from .common import (
    collection,
    decode_continuation,
    encode_continuation,
    link,
    new_id,
    page_size,
    require_customer,
)

MCA_TEMPLATE_ID = "117a69e3-9b6b-4b9a-97ca-64fd0af1d9ba"
REGISTRATION_NUMBER_COUNTRIES = {"AM", "AZ", "BY", "HU", "IN", "KZ", "KG", "MD", "RU", "TJ", "UZ", "UA"}


def domain_taken(state, domain: str) -> bool:
    return state.row("SELECT 1 FROM tenants WHERE domain = ?", (domain,)) is not None


def check_domain(ctx, domain: str):
    # 200 means the domain is taken, 404 means it is available (verify-domain-availability.md).
    return empty_response(200 if domain_taken(ctx.state, domain) else 404)


def _temporary_password(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits + "=;.!") for _ in range(12))


def create_customer_tenant(state, *, tenant_id: str, domain: str, company_name: str,
                           billing_profile: dict, now, rng: random.Random) -> dict:
    """Create the PC customer and its emulated Entra tenant (with the admin user)."""
    state.execute("INSERT INTO tenants (id, domain, display_name, kind) VALUES (?, ?, ?, 'customer')",
                  (tenant_id, domain, company_name))
    password = _temporary_password(rng)
    insert_user(state, tenant_id, {
        "id": new_id(), "displayName": "Admin", "givenName": None, "surname": None,
        "userPrincipalName": f"admin@{domain}", "mail": None, "mailNickname": "admin",
        "accountEnabled": True, "usageLocation": billing_profile.get("defaultAddress", {}).get("country"),
        "createdDateTime": iso(now), "jobTitle": "Global Administrator",
        "businessPhones": [], "assignedLicenses": [],
    })
    doc = {
        "id": tenant_id, "commerceId": new_id(),
        "companyProfile": {"tenantId": tenant_id, "domain": domain, "companyName": company_name,
                           "attributes": {"objectType": "CustomerCompanyProfile"}},
        "billingProfile": {**billing_profile, "id": new_id(),
                           "attributes": {"etag": str(rng.getrandbits(62)),
                                          "objectType": "CustomerBillingProfile"}},
        "relationshipToPartner": "reseller", "allowDelegatedAccess": True,
        "customDomains": [domain],
        "links": {"self": link(f"/customers/{tenant_id}")},
        "attributes": {"objectType": "Customer"},
    }
    state.execute("INSERT INTO customers (id, doc) VALUES (?, ?)", (tenant_id, json.dumps(doc)))
    return {**doc, "userCredentials": {"userName": "admin", "password": password}}


def create_customer(ctx):
    body = read_json(ctx.request)
    company = field(body, "companyProfile") or {}
    billing = field(body, "billingProfile") or {}
    domain = (field(company, "domain") or "").strip().lower()
    address = field(billing, "defaultAddress") or {}
    if not domain or not domain.endswith(".onmicrosoft.com"):
        raise pc_error(400, 800002, "Invalid request input: companyProfile.domain must be a "
                                    "*.onmicrosoft.com domain.")
    for name in ("email", "culture", "language", "companyName"):
        if not field(billing, name):
            raise pc_error(400, 800002, f"Invalid request input: billingProfile.{name} is required.")
    country = (field(address, "country") or "").upper()
    if not country:
        raise pc_error(400, 800002, "Invalid request input: billingProfile.defaultAddress.country "
                                    "is required.")
    registration = field(company, "organizationRegistrationNumber")
    if country in REGISTRATION_NUMBER_COUNTRIES and not registration:
        raise pc_error(400, 600049, "Organization registration number is required for the country.")
    if country not in REGISTRATION_NUMBER_COUNTRIES and registration:
        raise pc_error(400, 600002, "Organization registration number is not supported for the "
                                    "country.")
    with ctx.state.transaction():
        if domain_taken(ctx.state, domain):
            raise pc_error(409, 600024, f"The domain {domain} is already in use.",
                           error_name="DomainAlreadyExists")
        settings = ctx.settings
        if settings["sandboxLimits"]:
            count = ctx.state.row("SELECT COUNT(*) AS n FROM customers")["n"]
            if count >= settings["maxCustomers"]:
                raise pc_error(400, 800018, "The sandbox limit on the number of customers has been "
                                            "met.", error_name="SandboxLimitExceeded")
        profile = {
            "email": field(billing, "email"), "culture": field(billing, "culture"),
            "language": field(billing, "language"), "companyName": field(billing, "companyName"),
            "defaultAddress": {k[0].lower() + k[1:]: v for k, v in address.items()},
        }
        profile["defaultAddress"]["country"] = country
        doc = create_customer_tenant(ctx.state, tenant_id=new_id(), domain=domain,
                                     company_name=profile["companyName"], billing_profile=profile,
                                     now=ctx.now, rng=random.Random())
    return json_response(doc, 201)


def get_customer(ctx, customer_id: str):
    return json_response(require_customer(ctx, customer_id))


def list_customers(ctx):
    size = page_size(ctx.request, 200, 500)
    after = decode_continuation(ctx.request)
    rows = ctx.state.rows("SELECT seq, doc FROM customers WHERE seq > ? ORDER BY seq LIMIT ?",
                          (after, size + 1))
    items = [json.loads(r["doc"]) for r in rows[:size]]
    more = len(rows) > size
    return json_response(collection(
        items, f"/customers?size={size}",
        next_uri=f"/customers?size={size}&seekOperation=Next" if more else None,
        continuation=encode_continuation(rows[size - 1]["seq"]) if more else None))


# -- Microsoft Customer Agreement ----------------------------------------------------------
def has_accepted_mca(state, customer_id: str) -> bool:
    return state.row("SELECT 1 FROM agreements WHERE customer_id = ?", (customer_id,)) is not None


def create_agreement(ctx, customer_id: str):
    require_customer(ctx, customer_id)
    body = read_json(ctx.request)
    contact = field(body, "primaryContact") or {}
    for name in ("firstName", "lastName", "email"):
        if not field(contact, name):
            raise pc_error(400, 800002, f"Invalid request input: primaryContact.{name} is required.")
    if field(body, "type", "MicrosoftCustomerAgreement") != "MicrosoftCustomerAgreement":
        raise pc_error(400, 800002, "Invalid request input: unsupported agreement type.")
    if field(body, "templateId") != MCA_TEMPLATE_ID:
        raise pc_error(400, 600060, "The agreement template id is not valid.",
                       error_name="InvalidAgreementTemplateId")
    doc = {"primaryContact": contact, "templateId": MCA_TEMPLATE_ID,
           "dateAgreed": field(body, "dateAgreed") or iso(ctx.now),
           "type": "MicrosoftCustomerAgreement", "agreementLink": "https://aka.ms/customeragreement",
           "userId": ctx.claims.get("oid"),
           "attributes": {"objectType": "Agreement"}}
    with ctx.state.transaction():
        if has_accepted_mca(ctx.state, customer_id):
            raise pc_error(409, 600061, "A partner confirmed agreement already exists for the customer.",
                           error_name="PartnerConfirmedAgreementAlreadyExists")
        ctx.state.execute("INSERT INTO agreements (customer_id, doc) VALUES (?, ?)",
                          (customer_id, json.dumps(doc)))
    return json_response(doc, 201)


def list_agreements(ctx, customer_id: str):
    require_customer(ctx, customer_id)
    items = ctx.state.docs("SELECT doc FROM agreements WHERE customer_id = ? ORDER BY seq", (customer_id,))
    return json_response(collection(items, f"/customers/{customer_id}/agreements"))


def agreement_templates(ctx):
    item = {"templateId": MCA_TEMPLATE_ID, "agreementType": "MicrosoftCustomerAgreement",
            "agreementLink": "https://aka.ms/customeragreement", "version": "1.0",
            "attributes": {"objectType": "AgreementMetaData"}}
    return json_response(collection([item], "/agreements?agreementType=MicrosoftCustomerAgreement"))


# -- application consent -------------------------------------------------------------------
def create_consent(ctx, customer_id: str):
    require_customer(ctx, customer_id)
    body = read_json(ctx.request)
    app_id = field(body, "applicationId")
    grants = field(body, "applicationGrants") or []
    if app_id != ctx.partner.client_id:
        raise pc_error(400, 800002, "Invalid request input: applicationId is not a partner application.")
    if not grants or not all(field(g, "enterpriseApplicationId") and field(g, "scope") for g in grants):
        raise pc_error(400, 800002, "Invalid request input: applicationGrants need "
                                    "enterpriseApplicationId and scope.")
    doc = {"applicationId": app_id, "applicationGrants": [
        {"enterpriseApplicationId": field(g, "enterpriseApplicationId"), "scope": field(g, "scope")}
        for g in grants], "displayName": PARTNER_NAME}
    with ctx.state.transaction():
        if ctx.state.row("SELECT 1 FROM consents WHERE tenant_id = ? AND app_id = ?",
                         (customer_id, app_id)):
            raise pc_error(409, 1000, "Application consent already exists for this customer.",
                           error_name="ConsentAlreadyExists")
        ctx.state.execute("INSERT INTO consents (tenant_id, app_id, doc) VALUES (?, ?, ?)",
                          (customer_id, app_id, json.dumps(doc)))
    return json_response(doc, 201)


def list_consents(ctx, customer_id: str):
    require_customer(ctx, customer_id)
    items = ctx.state.docs("SELECT doc FROM consents WHERE tenant_id = ?", (customer_id,))
    return json_response(collection(items, f"/customers/{customer_id}/applicationconsents"))


def delete_consent(ctx, customer_id: str, app_id: str):
    require_customer(ctx, customer_id)
    deleted = ctx.state.execute("DELETE FROM consents WHERE tenant_id = ? AND app_id = ?",
                                (customer_id, app_id)).rowcount
    if not deleted:
        raise pc_error(404, 1000, "Application consent not found.")
    return empty_response(204)


DEFAULT_CONSENT_GRANTS = [{"enterpriseApplicationId": GRAPH_APP_ID,
                           "scope": "User.ReadWrite.All,Directory.Read.All,"
                                    "LicenseAssignment.ReadWrite.All,AuditLog.Read.All"}]

P = "/partnercenter/v1"
ROUTES = [
    Rule(f"{P}/domains/<domain>", endpoint=check_domain, methods=["GET", "HEAD"]),
    Rule(f"{P}/customers", endpoint=list_customers, methods=["GET"]),
    Rule(f"{P}/customers", endpoint=create_customer, methods=["POST"]),
    Rule(f"{P}/customers/<customer_id>", endpoint=get_customer, methods=["GET"]),
    Rule(f"{P}/agreements", endpoint=agreement_templates, methods=["GET"]),
    Rule(f"{P}/customers/<customer_id>/agreements", endpoint=list_agreements, methods=["GET"]),
    Rule(f"{P}/customers/<customer_id>/agreements", endpoint=create_agreement, methods=["POST"]),
    Rule(f"{P}/customers/<customer_id>/applicationconsents", endpoint=list_consents, methods=["GET"]),
    Rule(f"{P}/customers/<customer_id>/applicationconsents", endpoint=create_consent,
         methods=["POST"]),
    Rule(f"{P}/customers/<customer_id>/applicationconsents/<app_id>", endpoint=delete_consent,
         methods=["DELETE"]),
]
