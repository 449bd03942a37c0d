"""Entra ID (v2.0 endpoints): OIDC discovery, authorize (auto-approve), token, and the access-token
checks the emulated resource servers run. Behaviour follows reference §1 (verified with msal 1.39)."""

import base64
import json
import secrets
import uuid
from datetime import timedelta
from urllib.parse import urlencode

import jwt
from werkzeug.routing import Rule
from werkzeug.utils import redirect

from . import certificates
from .config import ADMIN_AGENT_ID
from .responses import entra_error, json_response
from .state import iso, parse_iso

PC_RESOURCE = "https://api.partnercenter.microsoft.com"
GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
OIDC_SCOPES = {"openid", "profile", "offline_access", "email"}
# App roles the partner's own app holds in the partner tenant (GDAP, partner billing export).
PARTNER_GRAPH_ROLES = ["DelegatedAdminRelationship.ReadWrite.All", "PartnerBilling.Read.All",
                       "Directory.Read.All"]
# Delegated scopes granted to the Admin Agent for a Graph `.default` request.
USER_GRAPH_SCOPES = ["DelegatedAdminRelationship.ReadWrite.All", "Directory.AccessAsUser.All",
                     "User.ReadWrite.All", "LicenseAssignment.ReadWrite.All",
                     "PartnerBilling.Read.All"]
REFRESH_TOKEN_DAYS = 90
CODE_MINUTES = 10


class TokenError(Exception):
    """An access token a resource server must reject (bad signature, expired, wrong audience)."""


# -- tenants and users ---------------------------------------------------------------------
def resolve_tenant(state, tenant: str):
    return state.row("SELECT * FROM tenants WHERE id = ? OR domain = ?", (tenant.lower(), tenant))


def _tenant_or_error(ctx, tenant: str):
    found = resolve_tenant(ctx.state, tenant)
    if found is None:
        raise entra_error(400, "invalid_request", 90002,
                          f"Tenant '{tenant}' not found. Check to make sure you have the correct "
                          "tenant ID and are signing into the correct cloud.")
    return found


def is_consented(state, tenant_id: str, app_id: str) -> bool:
    return state.row("SELECT 1 FROM consents WHERE tenant_id = ? AND app_id = ?",
                     (tenant_id, app_id)) is not None


def consented_roles(state, tenant_id: str, app_id: str) -> list[str]:
    doc = state.doc("SELECT doc FROM consents WHERE tenant_id = ? AND app_id = ?", (tenant_id, app_id))
    roles: list[str] = []
    for grant in (doc or {}).get("applicationGrants", []):
        if grant.get("enterpriseApplicationId") == GRAPH_APP_ID:
            roles += [s.strip() for s in grant.get("scope", "").split(",") if s.strip()]
    return roles


def has_active_gdap(state, customer_tenant_id: str) -> bool:
    for doc in state.docs("SELECT doc FROM gdap_relationships WHERE customer_tenant_id = ?",
                          (customer_tenant_id,)):
        if doc["status"] == "active":
            return True
    return False


# -- tokens --------------------------------------------------------------------------------
def _sign(state, claims: dict) -> str:
    return jwt.encode(claims, state.meta("signing_secret"), algorithm="HS256",
                      headers={"kid": "msemulator"})


def issue_access_token(ctx, *, tenant_id: str, audience: str, app_id: str, roles=None,
                       scp: str | None = None, user: dict | None = None,
                       amr: list[str] | None = None, home_tenant_id: str | None = None) -> dict:
    now = ctx.now
    lifetime = int(ctx.settings["tokenLifetimeSeconds"])
    claims = {
        "aud": audience, "iss": f"https://sts.windows.net/{tenant_id}/",
        "iat": int(now.timestamp()), "nbf": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=lifetime)).timestamp()),
        "appid": app_id, "azp": app_id, "tid": tenant_id, "ver": "1.0",
        "uti": secrets.token_urlsafe(16),
    }
    if user is None:
        claims.update({"idtyp": "app", "oid": app_id, "sub": app_id, "roles": roles or []})
    else:
        claims.update({"idtyp": "user", "oid": user["id"], "sub": user["id"], "scp": scp or "",
                       "upn": user["userPrincipalName"], "name": user["displayName"],
                       "amr": amr or ["pwd"]})
        if home_tenant_id and home_tenant_id != tenant_id:
            claims["idp"] = f"https://sts.windows.net/{home_tenant_id}/"
    return {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
            "access_token": _sign(ctx.state, claims)}


def verify_access_token(state, token: str, now, audience: str) -> dict:
    try:
        claims = jwt.decode(token, state.meta("signing_secret"), algorithms=["HS256"],
                            options={"verify_exp": False, "verify_aud": False,
                                     "verify_iat": False, "verify_nbf": False})
    except jwt.PyJWTError as exc:
        raise TokenError(f"Invalid token: {exc}") from None
    if claims.get("exp", 0) <= now.timestamp():
        raise TokenError("Lifetime validation failed, the token is expired.")
    if claims.get("aud") != audience:
        raise TokenError(f"Invalid audience '{claims.get('aud')}'; expected '{audience}'.")
    return claims


def bearer_token(request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


# -- endpoints -----------------------------------------------------------------------------
def openid_configuration(ctx, tenant: str):
    found = _tenant_or_error(ctx, tenant)
    base = f"{ctx.base_url}/{found['id']}"
    return json_response({
        "issuer": f"{base}/v2.0",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_types_supported": ["code", "id_token", "code id_token", "token id_token"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                  "client_secret_basic"],
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
    })


def jwks(ctx, tenant: str):
    # Access tokens are HS256-signed with the emulator secret; there is no public key to publish.
    _tenant_or_error(ctx, tenant)
    return json_response({"keys": []})


def instance_discovery(ctx):
    host = ctx.request.host
    authorize = ctx.request.args.get("authorization_endpoint", "")
    tenant = authorize.rstrip("/").split("/")[-4] if authorize.count("/") >= 6 else "common"
    return json_response({
        "tenant_discovery_endpoint": f"{ctx.base_url}/{tenant}/v2.0/.well-known/openid-configuration",
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
    })


def authorize(ctx, tenant: str):
    """Auto-approving authorization endpoint: signs in `login_hint` (or the Admin Agent) with MFA."""
    found = _tenant_or_error(ctx, tenant)
    args = ctx.request.args
    hint = args.get("login_hint")
    user = (ctx.state.doc("SELECT doc FROM users WHERE tenant_id = ? AND upn = ?", (found["id"], hint))
            if hint else
            ctx.state.doc("SELECT doc FROM users WHERE tenant_id = ? AND id = ?",
                          (found["id"], ADMIN_AGENT_ID)))
    if user is None:
        raise entra_error(400, "invalid_request", 50034,
                          "The user account does not exist in the directory.")
    code = secrets.token_urlsafe(32)
    with ctx.state.transaction():
        ctx.state.execute("INSERT INTO grants (token, kind, doc) VALUES (?, 'code', ?)", (code, json.dumps({
            "userId": user["id"], "tenantId": found["id"], "clientId": args.get("client_id"),
            "redirectUri": args.get("redirect_uri"), "nonce": args.get("nonce"), "mfa": True,
            "expires": iso(ctx.now + timedelta(minutes=CODE_MINUTES))})))
    query = {"code": code, "session_state": str(uuid.uuid4())}
    if args.get("state"):
        query["state"] = args["state"]
    return redirect(f"{args.get('redirect_uri', '')}?{urlencode(query)}")


def token(ctx, tenant: str):
    found = _tenant_or_error(ctx, tenant)
    form = ctx.request.form
    client_id = form.get("client_id", "")
    if client_id != ctx.partner.client_id:
        raise _app_not_found(client_id, found["id"])
    if form.get("client_assertion_type") == certificates.ASSERTION_TYPE:
        certificates.verify_assertion(ctx.state, form.get("client_assertion", ""), client_id=client_id,
                                      token_url=f"{ctx.base_url}{ctx.request.path}", now=ctx.now)
    elif form.get("client_secret") != ctx.partner.client_secret:
        raise entra_error(401, "invalid_client", 7000215,
                          "Invalid client secret provided. Ensure the secret being sent in the request "
                          f"is the client secret value, not the client secret ID, for a secret added to "
                          f"app '{client_id}'.")
    grant = form.get("grant_type")
    if grant == "client_credentials":
        return _client_credentials(ctx, found, form)
    if grant in ("refresh_token", "authorization_code"):
        return _user_grant(ctx, found, form, grant)
    raise entra_error(400, "unsupported_grant_type", 70003,
                      f"The app requested an unsupported grant type '{grant}'.")


def _app_not_found(client_id: str, tenant_id: str):
    return entra_error(400, "unauthorized_client", 700016,
                       f"Application with identifier '{client_id}' was not found in the directory "
                       f"'{tenant_id}'. This can happen if the application has not been installed by "
                       "the administrator of the tenant or consented to by any user in the tenant. "
                       "You might have sent your authentication request to the wrong tenant.")


def _resource(scopes: list[str], tenant_id: str) -> tuple[str, list[str]]:
    wanted = [s for s in scopes if s not in OIDC_SCOPES]
    if not wanted:
        raise entra_error(400, "invalid_scope", 70011,
                          "The provided value for the input parameter 'scope' is not valid.")
    resource = wanted[0].rsplit("/", 1)[0]
    if resource not in (PC_RESOURCE, GRAPH_RESOURCE):
        raise entra_error(400, "invalid_resource", 500011,
                          f"The resource principal named {resource} was not found in the tenant "
                          f"named {tenant_id}.")
    return resource, [s.rsplit("/", 1)[1] for s in wanted]


def _client_credentials(ctx, tenant_row, form):
    tenant_id = tenant_row["id"]
    scopes = form.get("scope", "").split()
    if len(scopes) != 1 or not scopes[0].endswith("/.default"):
        raise entra_error(400, "invalid_scope", 1002012,
                          f"The provided value for scope {' '.join(scopes)} is not valid. Client "
                          "credential flows must have a scope value with /.default suffixed to the "
                          "resource identifier (application ID URI).")
    resource, _ = _resource(scopes, tenant_id)
    partner_tenant = tenant_id == ctx.partner.tenant_id
    if not partner_tenant and not is_consented(ctx.state, tenant_id, ctx.partner.client_id):
        raise _app_not_found(ctx.partner.client_id, tenant_id)
    if resource == GRAPH_RESOURCE:
        roles = (PARTNER_GRAPH_ROLES if partner_tenant
                 else consented_roles(ctx.state, tenant_id, ctx.partner.client_id))
    else:
        roles = []
    return json_response(issue_access_token(ctx, tenant_id=tenant_id, audience=resource,
                                            app_id=ctx.partner.client_id, roles=roles),
                         headers={"Cache-Control": "no-store, no-cache"})


def _b64url(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def new_refresh_token(state, *, user_id: str, tenant_id: str, client_id: str, mfa: bool, now) -> str:
    value = "0.emu." + secrets.token_urlsafe(48)
    state.execute("INSERT INTO grants (token, kind, doc) VALUES (?, 'refresh_token', ?)", (value, json.dumps({
        "userId": user_id, "tenantId": tenant_id, "clientId": client_id, "mfa": mfa,
        "expires": iso(now + timedelta(days=REFRESH_TOKEN_DAYS))})))
    return value


def _user_grant(ctx, tenant_row, form, grant: str):
    kind, value = (("refresh_token", form.get("refresh_token", "")) if grant == "refresh_token"
                   else ("code", form.get("code", "")))
    with ctx.state.transaction():
        found = ctx.state.row("SELECT doc FROM grants WHERE token = ? AND kind = ?", (value, kind))
        if found is None:
            if kind == "code":
                raise entra_error(400, "invalid_grant", 54005,
                                  "OAuth2 Authorization code was already redeemed, please retry with "
                                  "a new valid code or use an existing refresh token.")
            raise entra_error(400, "invalid_grant", 70000,
                              "Provided grant is invalid or malformed.")
        doc = json.loads(found["doc"])
        if parse_iso(doc["expires"]) <= ctx.now:
            raise entra_error(400, "invalid_grant", 700082,
                              "The refresh token has expired due to inactivity.")
        if kind == "code":
            ctx.state.execute("DELETE FROM grants WHERE token = ?", (value,))
        home = doc["tenantId"]
        target = tenant_row["id"]
        if target != home and not has_active_gdap(ctx.state, target):
            raise entra_error(400, "invalid_grant", 50020,
                              f"User account from identity provider 'https://sts.windows.net/{home}/' "
                              f"does not exist in tenant '{tenant_row['display_name']}' and cannot "
                              "access the application in that tenant.")
        user = ctx.state.doc("SELECT doc FROM users WHERE tenant_id = ? AND id = ?",
                             (home, doc["userId"]))
        scopes = form.get("scope", "").split()
        resource, names = _resource(scopes, target)
        if resource == PC_RESOURCE:
            scp = "user_impersonation"
        else:
            scp = " ".join(USER_GRAPH_SCOPES if names == [".default"] else names)
        amr = ["pwd", "mfa"] if doc["mfa"] else ["pwd"]
        body = issue_access_token(ctx, tenant_id=target, audience=resource, app_id=doc["clientId"],
                                  scp=scp, user=user, amr=amr, home_tenant_id=home)
        body["refresh_token"] = new_refresh_token(ctx.state, user_id=user["id"], tenant_id=home,
                                                  client_id=doc["clientId"], mfa=doc["mfa"],
                                                  now=ctx.now)
    now = int(ctx.now.timestamp())
    id_claims = {"aud": doc["clientId"], "iss": f"{ctx.base_url}/{target}/v2.0", "iat": now,
                 "nbf": now, "exp": now + 3600, "oid": user["id"], "sub": user["id"], "tid": target,
                 "preferred_username": user["userPrincipalName"], "name": user["displayName"],
                 "ver": "2.0"}
    if doc.get("nonce"):
        id_claims["nonce"] = doc["nonce"]
    body.update({"scope": " ".join(s for s in scopes if s not in OIDC_SCOPES),
                 "id_token": _sign(ctx.state, id_claims),
                 "client_info": _b64url({"uid": user["id"], "utid": home})})
    return json_response(body, headers={"Cache-Control": "no-store, no-cache"})


ROUTES = [
    Rule("/common/discovery/instance", endpoint=instance_discovery, methods=["GET"]),
    Rule("/<tenant>/v2.0/.well-known/openid-configuration", endpoint=openid_configuration,
         methods=["GET"]),
    Rule("/<tenant>/discovery/v2.0/keys", endpoint=jwks, methods=["GET"]),
    Rule("/<tenant>/oauth2/v2.0/authorize", endpoint=authorize, methods=["GET"]),
    Rule("/<tenant>/oauth2/v2.0/token", endpoint=token, methods=["POST"]),
]
