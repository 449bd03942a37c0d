"""Graph users: list with $top/$select/$filter/$count and skiptoken paging, get, create, update
(including a password reset through passwordProfile), delete, revokeSignInSessions, signInActivity,
assignLicense and licenseDetails (reference §3.2, §3.3).

Passwords are kept as salted hashes under the private ``_password`` key of the user document, which
no Graph response renders (Graph never returns a password; ``passwordProfile`` reads as null). The
control API's password check (``/_emulator/tenants/{t}/users/{u}/password-check``) lets tests prove
what was set, as signing in would in Microsoft.
"""

import base64
import hashlib
import hmac
import json
import re
import secrets
import uuid
from urllib.parse import quote, urlencode

from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from ..directory import insert_user, update_user
from ..responses import empty_response, graph_error, json_response
from ..state import iso
from .common import ASSIGN_LICENSES, AUDIT, PASSWORD, READ, REVOKE_SESSIONS, WRITE_USERS, authorize, odata
from .licenses import service_plans_for, subscribed_skus

DEFAULT_PROPERTIES = ("businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
                      "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id")
MAX_TOP = 999
DEFAULT_TOP = 100
# Graph serves at most this many users a page when signInActivity is selected or filtered on,
# whatever $top asks for (learn.microsoft.com/graph/api/user-list, "Optional query parameters").
SIGN_IN_ACTIVITY_MAX_PAGE = 500
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
FILTER_COLUMNS = {"userprincipalname": "upn", "mail": "mail", "displayname": "display_name",
                  "accountenabled": "account_enabled", "id": "id"}
CLAUSE = re.compile(
    r"\s*(?:startswith\(\s*(?P<sw_field>\w+)\s*,\s*'(?P<sw_value>(?:[^']|'')*)'\s*\)"
    r"|assignedLicenses/any\(\s*\w+\s*:\s*\w+/skuId\s+eq\s+(?P<sku>[0-9a-fA-F-]{36})\s*\)"
    r"|(?P<eq_field>\w+)\s+eq\s+(?:'(?P<eq_str>(?:[^']|'')*)'|(?P<eq_lit>true|false)))\s*",
    re.IGNORECASE)
CONNECTIVE = re.compile(r"(and|or)\b", re.IGNORECASE)
USAGE_LOCATION = re.compile(r"^[A-Z]{2}$")
# Characters Entra ID accepts in a UPN's local part and in a mail alias (username policies).
UPN_LOCAL = re.compile(r"^[A-Za-z0-9'.\-_!#^~]{1,64}$")
MAIL_NICKNAME = re.compile(r"^[\x21-\x7e]{1,64}$")
MAIL_NICKNAME_FORBIDDEN = set('@()\\[]";:<>,')
# Entra ID's default policy: 8 to 256 characters, three of upper case, lower case, digits and symbols.
PASSWORD_CLASSES = (str.isupper, str.islower, str.isdigit, lambda c: not c.isalnum())
PASSWORD_REFUSED = ("The specified password does not comply with password complexity requirements. "
                    "Please provide a different password.")
PASSWORD_PROFILE_KEYS = {"password", "forceChangePasswordNextSignIn", "forceChangePasswordNextSignInWithMfa"}


def _invalid_property(name: str):
    return graph_error(400, "Request_BadRequest",
                       f"Invalid value specified for property '{name}' of resource 'User'.")


def _password_record(ctx, profile) -> dict:
    """Validate a passwordProfile as Entra ID does and return what the emulator keeps of it."""
    if not isinstance(profile, dict) or set(profile) - PASSWORD_PROFILE_KEYS:
        raise _invalid_property("passwordProfile")
    password = profile.get("password")
    if not isinstance(password, str):
        raise _invalid_property("passwordProfile")
    classes = sum(1 for test in PASSWORD_CLASSES if any(test(c) for c in password))
    if not 8 <= len(password) <= 256 or classes < 3:
        raise graph_error(400, "Request_BadRequest", PASSWORD_REFUSED)
    force = profile.get("forceChangePasswordNextSignIn", False)
    if not isinstance(force, bool):
        raise _invalid_property("passwordProfile")
    salt = secrets.token_hex(8)
    return {"salt": salt, "hash": hashlib.sha256(f"{salt}:{password}".encode()).hexdigest(),
            "forceChangePasswordNextSignIn": force, "setAt": iso(ctx.now)}


def password_matches(doc: dict, password: str) -> bool:
    record = doc.get("_password")
    if not record:
        return False
    digest = hashlib.sha256(f"{record['salt']}:{password}".encode()).hexdigest()
    return hmac.compare_digest(digest, record["hash"])


def _bad_filter(message: str = "Invalid filter clause"):
    return graph_error(400, "Request_UnsupportedQuery", message)


def _filter_sql(ctx, tenant_id: str, expression: str) -> tuple[str, list]:
    sql, params, pos = [], [], 0
    while True:
        match = CLAUSE.match(expression, pos)
        if not match:
            raise _bad_filter()
        if match["sku"]:
            if not _advanced(ctx):
                raise _bad_filter("Operator 'any' with a lambda requires ConsistencyLevel: eventual "
                                  "and $count=true.")
            sql.append("id IN (SELECT user_id FROM user_licenses WHERE tenant_id = ? AND sku_id = ?)")
            params += [tenant_id, match["sku"].lower()]
        elif match["sw_field"]:
            column = FILTER_COLUMNS.get(match["sw_field"].lower())
            if column in (None, "account_enabled", "id"):
                raise _bad_filter()
            value = match["sw_value"].replace("''", "'")
            escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            sql.append(f"{column} LIKE ? ESCAPE '\\'")
            params.append(escaped + "%")
        else:
            column = FILTER_COLUMNS.get(match["eq_field"].lower())
            if column is None:
                raise _bad_filter()
            if column == "account_enabled":
                if match["eq_lit"] is None:
                    raise _bad_filter()
                params.append(1 if match["eq_lit"].lower() == "true" else 0)
            else:
                if match["eq_str"] is None:
                    raise _bad_filter()
                params.append(match["eq_str"].replace("''", "'"))
            sql.append(f"{column} = ?")
        pos = match.end()
        if pos >= len(expression):
            return " ".join(sql), params
        connective = CONNECTIVE.match(expression, pos)
        if not connective:
            raise _bad_filter()
        sql.append(connective[1].upper())
        pos = connective.end()


def _advanced(ctx) -> bool:
    return (ctx.request.headers.get("ConsistencyLevel", "").lower() == "eventual"
            and ctx.request.args.get("$count", "").lower() == "true")


def _selected(ctx) -> list[str] | None:
    select = ctx.request.args.get("$select")
    return [s.strip() for s in select.split(",") if s.strip()] if select else None


def _premium_tenant(ctx, tenant_id: str) -> bool:
    for sku in subscribed_skus(ctx, tenant_id):
        if sku["prepaidUnits"]["enabled"] and any(
                p["servicePlanName"] in ("AAD_PREMIUM", "AAD_PREMIUM_P2") for p in sku["servicePlans"]):
            return True
    return False


def render_user(doc: dict, select: list[str] | None) -> dict:
    keys = select or DEFAULT_PROPERTIES
    out = {}
    for key in keys:
        if key.startswith("_"):
            continue
        if key == "passwordProfile":
            # Graph never returns a password or its profile.
            out[key] = None
            continue
        if key == "signInActivity":
            if doc.get("signInActivity"):
                out[key] = doc["signInActivity"]
            continue
        out[key] = doc.get(key, [] if key in ("businessPhones", "assignedLicenses") else None)
    return out


def _check_select(ctx, tenant_id: str, select: list[str] | None) -> None:
    if select and "signInActivity" in select:
        authorize(ctx, AUDIT)
        if not _premium_tenant(ctx, tenant_id):
            raise graph_error(403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                              "Neither tenant is B2C or tenant doesn't have premium license")


def list_users(ctx):
    tenant_id = authorize(ctx, READ)
    args = ctx.request.args
    try:
        top = int(args.get("$top", DEFAULT_TOP))
    except ValueError:
        raise graph_error(400, "Request_BadRequest", "Invalid value for $top.") from None
    if not 1 <= top <= MAX_TOP:
        raise graph_error(400, "Request_BadRequest", f"Invalid page size specified: '{top}'. Must be "
                                                     f"between 1 and {MAX_TOP} inclusive.")
    select = _selected(ctx)
    _check_select(ctx, tenant_id, select)
    if (select and "signInActivity" in select) or "signinactivity" in args.get("$filter", "").lower():
        # A larger $top is accepted but the page is cut; the nextLink carries the rest.
        top = min(top, SIGN_IN_ACTIVITY_MAX_PAGE)
    where, params = "tenant_id = ?", [tenant_id]
    if args.get("$filter"):
        clause, extra = _filter_sql(ctx, tenant_id, args["$filter"])
        where += f" AND ({clause})"
        params += extra
    after = 0
    if args.get("$skiptoken"):
        try:
            after = int(json.loads(base64.urlsafe_b64decode(args["$skiptoken"].encode()))["after"])
        except (ValueError, KeyError, TypeError):
            raise graph_error(400, "Request_BadRequest", "Invalid skiptoken.") from None
    count_requested = args.get("$count", "").lower() == "true"
    if count_requested and not _advanced(ctx):
        raise graph_error(400, "Request_BadRequest", "$count is only supported with the "
                                                     "ConsistencyLevel header set to eventual.")
    rows = ctx.state.rows(f"SELECT seq, doc FROM users WHERE {where} AND seq > ? ORDER BY seq LIMIT ?",  # noqa: S608
                          [*params, after, top + 1])
    extra = {}
    if count_requested:
        extra["@odata.count"] = ctx.state.row(f"SELECT COUNT(*) AS n FROM users WHERE {where}", params)["n"]  # noqa: S608
    body = odata(ctx, "users" + (f"({','.join(select)})" if select else ""),
                 [render_user(json.loads(r["doc"]), select) for r in rows[:top]], **extra)
    if len(rows) > top:
        token = base64.urlsafe_b64encode(json.dumps({"after": rows[top - 1]["seq"]}).encode()).decode()
        query = {k: v for k, v in args.items() if k != "$skiptoken"}
        query["$skiptoken"] = token
        body["@odata.nextLink"] = f"{ctx.graph_base}/users?{urlencode(query, safe='$,()', quote_via=quote)}"
    return json_response(body)


def count_users(ctx):
    tenant_id = authorize(ctx, READ)
    if ctx.request.headers.get("ConsistencyLevel", "").lower() != "eventual":
        raise graph_error(400, "Request_BadRequest", "$count requires ConsistencyLevel: eventual.")
    where, params = "tenant_id = ?", [tenant_id]
    if ctx.request.args.get("$filter"):
        clause, extra = _filter_sql(ctx, tenant_id, ctx.request.args["$filter"])
        where += f" AND ({clause})"
        params += extra
    count = ctx.state.row(f"SELECT COUNT(*) AS n FROM users WHERE {where}", params)["n"]  # noqa: S608
    return Response(str(count), content_type="text/plain")


def load_user(ctx, tenant_id: str, key: str) -> dict:
    column = "id" if GUID.match(key) else "upn"
    doc = ctx.state.doc(f"SELECT doc FROM users WHERE tenant_id = ? AND {column} = ?",  # noqa: S608
                        (tenant_id, key))
    if doc is None:
        raise graph_error(404, "Request_ResourceNotFound",
                          f"Resource '{key}' does not exist or one of its queried reference-property "
                          "objects are not present.")
    return doc


def get_user(ctx, user_key: str):
    tenant_id = authorize(ctx, READ)
    select = _selected(ctx)
    _check_select(ctx, tenant_id, select)
    doc = load_user(ctx, tenant_id, user_key)
    return json_response({"@odata.context": f"{ctx.graph_base}/$metadata#users/$entity",
                          **render_user(doc, select)})


def _json_body(ctx) -> dict:
    try:
        body = json.loads(ctx.request.data or b"{}")
    except ValueError:
        raise graph_error(400, "BadRequest", "Unable to read JSON request payload.") from None
    if not isinstance(body, dict):
        raise graph_error(400, "BadRequest", "Unable to read JSON request payload.")
    return body


def create_user(ctx):
    tenant_id = authorize(ctx, WRITE_USERS)
    body = _json_body(ctx)
    for name in ("accountEnabled", "displayName", "mailNickname", "userPrincipalName", "passwordProfile"):
        if body.get(name) in (None, ""):
            raise graph_error(400, "Request_BadRequest",
                              f"Property '{name}' is required when creating the entity.")
    upn = body["userPrincipalName"]
    if not isinstance(upn, str) or not UPN_LOCAL.match(upn.rpartition("@")[0]):
        raise _invalid_property("userPrincipalName")
    nickname = body["mailNickname"]
    if not isinstance(nickname, str) or not MAIL_NICKNAME.match(nickname) or set(nickname) & MAIL_NICKNAME_FORBIDDEN:
        raise _invalid_property("mailNickname")
    domain = ctx.state.row("SELECT domain FROM tenants WHERE id = ?", (tenant_id,))["domain"]
    if upn.rpartition("@")[2].lower() != domain.lower():
        raise graph_error(400, "Request_BadRequest", "The domain portion of the userPrincipalName "
                          "property is invalid. You must use one of the verified domain names in "
                          "your organization.")
    if not isinstance(body["accountEnabled"], bool):
        raise _invalid_property("accountEnabled")
    location = body.get("usageLocation")
    if location is not None and (not isinstance(location, str) or not USAGE_LOCATION.match(location)):
        raise _invalid_property("usageLocation")
    password = _password_record(ctx, body["passwordProfile"])
    doc = {"id": str(uuid.uuid4()), "businessPhones": body.get("businessPhones", []),
           "displayName": body["displayName"], "givenName": body.get("givenName"),
           "surname": body.get("surname"), "jobTitle": body.get("jobTitle"),
           "mail": body.get("mail"), "mobilePhone": body.get("mobilePhone"),
           "officeLocation": body.get("officeLocation"), "preferredLanguage": body.get("preferredLanguage"),
           "userPrincipalName": upn, "mailNickname": body["mailNickname"],
           "accountEnabled": bool(body["accountEnabled"]), "usageLocation": location,
           "department": body.get("department"), "createdDateTime": iso(ctx.now),
           "lastPasswordChangeDateTime": iso(ctx.now), "signInSessionsValidFromDateTime": iso(ctx.now),
           "assignedLicenses": [], "_password": password}
    with ctx.state.transaction():
        if ctx.state.row("SELECT 1 FROM users WHERE tenant_id = ? AND upn = ?", (tenant_id, upn)):
            raise upn_conflict()
        insert_user(ctx.state, tenant_id, doc)
    return json_response({"@odata.context": f"{ctx.graph_base}/$metadata#users/$entity",
                          **render_user(doc, None)}, 201,
                         {"Location": f"{ctx.graph_base}/users/{doc['id']}"})


def upn_conflict():
    message = "Another object with the same value for property userPrincipalName already exists."
    return graph_error(400, "Request_BadRequest", message,
                       details=[{"code": "ObjectConflict", "message": message, "target": "userPrincipalName"}])


UPDATABLE = {"displayName", "givenName", "surname", "jobTitle", "department", "officeLocation",
             "mobilePhone", "usageLocation", "accountEnabled", "mail", "preferredLanguage",
             "businessPhones", "passwordProfile"}


def update_user_route(ctx, user_key: str):
    body = _json_body(ctx)
    # Resetting a password needs User-PasswordProfile.ReadWrite.All (or User.ReadWrite.All); the other
    # properties need User.ReadWrite.All.
    tenant_id = authorize(ctx, PASSWORD) if "passwordProfile" in body else ctx.claims["tid"]
    if set(body) - {"passwordProfile"} or not body:
        tenant_id = authorize(ctx, WRITE_USERS)
    unknown = set(body) - UPDATABLE
    if unknown:
        raise graph_error(400, "Request_BadRequest", f"Property '{sorted(unknown)[0]}' is read-only "
                                                     "or does not exist on type 'User'.")
    if "usageLocation" in body and body["usageLocation"] is not None and (
            not isinstance(body["usageLocation"], str) or not USAGE_LOCATION.match(body["usageLocation"])):
        raise _invalid_property("usageLocation")
    if "accountEnabled" in body and not isinstance(body["accountEnabled"], bool):
        raise _invalid_property("accountEnabled")
    changes = dict(body)
    if "passwordProfile" in changes:
        changes["_password"] = _password_record(ctx, changes.pop("passwordProfile"))
        changes["lastPasswordChangeDateTime"] = iso(ctx.now)
    with ctx.state.transaction():
        doc = load_user(ctx, tenant_id, user_key)
        doc.update(changes)
        update_user(ctx.state, tenant_id, doc)
    return empty_response(204)


def revoke_sign_in_sessions(ctx, user_key: str):
    """Invalidate the user's refresh tokens and session cookies: ``signInSessionsValidFromDateTime``
    moves to now. Graph answers 200 with an Edm.Boolean."""
    tenant_id = authorize(ctx, REVOKE_SESSIONS)
    with ctx.state.transaction():
        doc = load_user(ctx, tenant_id, user_key)
        doc["signInSessionsValidFromDateTime"] = iso(ctx.now)
        update_user(ctx.state, tenant_id, doc)
    return json_response({"@odata.context": f"{ctx.graph_base}/$metadata#Edm.Boolean", "value": True})


def delete_user(ctx, user_key: str):
    tenant_id = authorize(ctx, WRITE_USERS)
    with ctx.state.transaction():
        doc = load_user(ctx, tenant_id, user_key)
        ctx.state.execute("DELETE FROM users WHERE tenant_id = ? AND id = ?", (tenant_id, doc["id"]))
        ctx.state.execute("DELETE FROM user_licenses WHERE tenant_id = ? AND user_id = ?",
                          (tenant_id, doc["id"]))
    return empty_response(204)


def _guid(value) -> str:
    if not isinstance(value, str) or not GUID.match(value):
        raise graph_error(400, "Request_BadRequest",
                          "Cannot convert a primitive value to the expected type 'Edm.Guid'. See the "
                          "inner error for details.")
    return value.lower()


def assign_license(ctx, user_key: str):
    tenant_id = authorize(ctx, ASSIGN_LICENSES)
    body = _json_body(ctx)
    missing = [n for n in ("addLicenses", "removeLicenses") if not isinstance(body.get(n), list)]
    if missing:
        raise graph_error(400, "Request_BadRequest",
                          "One or more parameters of the operation 'assignLicense' are missing from "
                          f"the request payload. The missing parameters are: {', '.join(missing)}.")
    adds = [(_guid(a.get("skuId")), [_guid(p) for p in a.get("disabledPlans") or []])
            for a in body["addLicenses"]]
    removes = [_guid(r) for r in body["removeLicenses"]]
    with ctx.state.transaction():
        doc = load_user(ctx, tenant_id, user_key)
        assigned = {a["skuId"]: a for a in doc.get("assignedLicenses", [])}
        skus = {s["skuId"]: s for s in subscribed_skus(ctx, tenant_id)}
        if adds and not doc.get("usageLocation"):
            raise graph_error(400, "Request_BadRequest",
                              "License assignment cannot be done for user with invalid usage location.")
        for sku_id, disabled in adds:
            sku = skus.get(sku_id)
            if sku is None or sku["capabilityStatus"] == "LockedOut":
                raise graph_error(400, "Request_BadRequest",
                                  f"License {sku_id} does not correspond to a valid company License.")
            if sku_id not in assigned:
                available = sku["prepaidUnits"]["enabled"] + sku["prepaidUnits"]["warning"]
                if sku["consumedUnits"] >= available:
                    raise graph_error(400, "Request_BadRequest",
                                      f"Subscription with SKU {sku_id} does not have any available "
                                      "licenses.")
                sku["consumedUnits"] += 1
            assigned[sku_id] = {"disabledPlans": disabled, "skuId": sku_id}
            ctx.state.execute("INSERT OR REPLACE INTO user_licenses (tenant_id, user_id, sku_id,"
                              " disabled_plans) VALUES (?, ?, ?, ?)",
                              (tenant_id, doc["id"], sku_id, json.dumps(disabled)))
        for sku_id in removes:
            if sku_id not in assigned:
                raise graph_error(400, "Request_BadRequest",
                                  f"User does not have a corresponding license {sku_id}.")
            del assigned[sku_id]
            ctx.state.execute("DELETE FROM user_licenses WHERE tenant_id = ? AND user_id = ? AND"
                              " sku_id = ?", (tenant_id, doc["id"], sku_id))
        doc["assignedLicenses"] = list(assigned.values())
        update_user(ctx.state, tenant_id, doc)
    return json_response({"@odata.context": f"{ctx.graph_base}/$metadata#users/$entity",
                          **render_user(doc, [*DEFAULT_PROPERTIES, "assignedLicenses"])})


def license_details(ctx, user_key: str):
    tenant_id = authorize(ctx, READ)
    doc = load_user(ctx, tenant_id, user_key)
    value = []
    for assigned in doc.get("assignedLicenses", []):
        offer = ctx.catalog.by_provisioning_id.get(assigned["skuId"])
        value.append({"id": base64.urlsafe_b64encode(
                          f"{doc['id']}:{assigned['skuId']}".encode()).decode().rstrip("="),
                      "skuId": assigned["skuId"],
                      "skuPartNumber": offer.sku_part_number if offer else "",
                      "servicePlans": service_plans_for(ctx, assigned["skuId"],
                                                        assigned["disabledPlans"])})
    return json_response(odata(ctx, f"users('{doc['id']}')/licenseDetails", value))


P = "/graph/v1.0"
ROUTES = [
    Rule(f"{P}/users", endpoint=list_users, methods=["GET"]),
    Rule(f"{P}/users", endpoint=create_user, methods=["POST"]),
    Rule(f"{P}/users/$count", endpoint=count_users, methods=["GET"]),
    Rule(f"{P}/users/<user_key>", endpoint=get_user, methods=["GET"]),
    Rule(f"{P}/users/<user_key>", endpoint=update_user_route, methods=["PATCH"]),
    Rule(f"{P}/users/<user_key>", endpoint=delete_user, methods=["DELETE"]),
    Rule(f"{P}/users/<user_key>/assignLicense", endpoint=assign_license, methods=["POST"]),
    Rule(f"{P}/users/<user_key>/revokeSignInSessions", endpoint=revoke_sign_in_sessions, methods=["POST"]),
    Rule(f"{P}/users/<user_key>/licenseDetails", endpoint=license_details, methods=["GET"]),
]
