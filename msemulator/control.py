"""Control API under /_emulator (not a Microsoft API): clock, faults, rate limits, Microsoft's
modelled throttling, request log,
reset, settings, GDAP approval, bulk users, password checks, refresh tokens, fraud events, billing period
close.

If MSEMULATOR_CONTROL_TOKEN is set, calls must send it in `X-Emulator-Token`."""

import fnmatch
import json
import random

from werkzeug.routing import Rule

from . import certificates, gdap
from .faults import FaultRule, RateLimit
from .graph.users import load_user, password_matches
from .identity import new_refresh_token
from .partner_center import billing, fraud
from .responses import ApiError, empty_response, json_response
from .seed import add_users, seed

MAX_BULK_USERS = 50000


def _error(status: int, message: str) -> ApiError:
    return ApiError(json_response({"error": message}, status))


def _body(ctx) -> dict:
    try:
        body = json.loads(ctx.request.data or b"{}")
    except ValueError:
        raise _error(400, "body must be JSON") from None
    if not isinstance(body, dict):
        raise _error(400, "body must be a JSON object")
    return body


def info(ctx):
    tenants = [dict(r) for r in ctx.state.rows("SELECT id, domain, display_name, kind FROM tenants")]
    return json_response({
        "now": ctx.now.isoformat(), "authorityHost": ctx.base_url,
        "partnerCenterBaseUrl": ctx.pc_base, "graphBaseUrl": ctx.graph_base,
        "partnerTenantId": ctx.partner.tenant_id, "clientId": ctx.partner.client_id,
        "tenants": tenants})


def reset(ctx):
    body = _body(ctx)
    ctx.faults.clear()
    ctx.throttling.reset()
    ctx.state.reset()
    if body.get("seed", True):
        seed(ctx.state, ctx.catalog, ctx.partner)
    return json_response({"reset": True, "seeded": body.get("seed", True)})


def clock(ctx):
    if ctx.request.method == "GET":
        return json_response({"now": ctx.now.isoformat()})
    body = _body(ctx)
    seconds = (float(body.get("seconds", 0)) + float(body.get("hours", 0)) * 3600
               + float(body.get("days", 0)) * 86400)
    if seconds < 0:
        raise _error(400, "the emulator clock only moves forward")
    now = ctx.state.advance_clock(seconds)
    ctx.settle(now)
    return json_response({"now": now.isoformat()})


def settings(ctx):
    if ctx.request.method == "PATCH":
        try:
            return json_response(ctx.state.update_settings(_body(ctx)))
        except KeyError as exc:
            raise _error(400, f"unknown settings: {exc.args[0]}") from None
    return json_response(ctx.state.settings())


def faults(ctx):
    if ctx.request.method == "DELETE":
        ctx.faults.clear()
        return empty_response(204)
    if ctx.request.method == "GET":
        return json_response({"faults": [r.as_dict() for r in ctx.faults.rules],
                              "rateLimits": [r.as_dict() for r in ctx.faults.limits]})
    body = _body(ctx)
    try:
        rule = FaultRule(pattern=body["pattern"], method=body.get("method", "*").upper(),
                         kind=body.get("kind", "status"), status=int(body.get("status", 503)),
                         retry_after=body.get("retryAfter"), latency_ms=int(body.get("latencyMs", 0)),
                         hang_seconds=float(body.get("hangSeconds", 30)),
                         idle_seconds=float(body.get("idleSeconds", 0)),
                         times=body.get("times", 1 if body.get("rate") is None else None),
                         rate=body.get("rate"), seed=body.get("seed"))
    except (KeyError, ValueError, TypeError) as exc:
        raise _error(400, f"invalid fault: {exc}") from None
    return json_response(ctx.faults.add_rule(rule).as_dict(), 201)


def throttling(ctx):
    """Microsoft's modelled limits (msemulator/throttling.py): GET them, PATCH figures or `enabled`."""
    if ctx.request.method == "PATCH":
        try:
            return json_response(ctx.throttling.configure(_body(ctx)))
        except (KeyError, ValueError, TypeError) as exc:
            raise _error(400, f"unknown or invalid throttling settings: {exc}") from None
    return json_response(ctx.throttling.as_dict())


def rate_limits(ctx):
    body = _body(ctx)
    try:
        limit = RateLimit(pattern=body["pattern"], limit=int(body["limit"]),
                          window_seconds=float(body.get("windowSeconds", 60)),
                          method=body.get("method", "*").upper())
    except (KeyError, ValueError, TypeError) as exc:
        raise _error(400, f"invalid rate limit: {exc}") from None
    return json_response(ctx.faults.add_limit(limit).as_dict(), 201)


def requests_log(ctx):
    if ctx.request.method == "DELETE":
        ctx.state.execute("DELETE FROM request_log")
        return empty_response(204)
    args = ctx.request.args
    rows = ctx.state.rows("SELECT * FROM request_log WHERE seq > ? ORDER BY seq",
                          (int(args.get("since", 0)),))
    out = []
    for row in rows:
        headers = json.loads(row["headers"])
        lowered = {k.lower(): v for k, v in headers.items()}
        if args.get("method") and row["method"] != args["method"].upper():
            continue
        if args.get("path") and not fnmatch.fnmatchcase(row["path"], args["path"]):
            continue
        if args.get("requestId") and lowered.get("ms-requestid") != args["requestId"]:
            continue
        if args.get("correlationId") and lowered.get("ms-correlationid") != args["correlationId"]:
            continue
        out.append({"seq": row["seq"], "time": row["ts"], "method": row["method"], "path": row["path"],
                    "query": row["query"], "status": row["status"], "headers": headers,
                    "body": row["body"]})
    limit = int(args.get("limit", 1000))
    return json_response({"requests": out[-limit:]})


def approve_gdap(ctx, relationship_id: str):
    doc = gdap.approve(ctx.state, relationship_id, ctx.now)
    if doc is None:
        raise _error(400, "relationship not found or not in approvalPending")
    return json_response(doc)


def bulk_users(ctx, tenant_id: str):
    body = _body(ctx)
    count = int(body.get("count", 0))
    if not 1 <= count <= MAX_BULK_USERS:
        raise _error(400, f"count must be between 1 and {MAX_BULK_USERS}")
    if ctx.state.row("SELECT 1 FROM tenants WHERE id = ?", (tenant_id,)) is None:
        raise _error(404, "tenant not found")
    add_users(ctx.state, tenant_id, count, ctx.now, int(body.get("seed", 1)))
    total = ctx.state.row("SELECT COUNT(*) AS n FROM users WHERE tenant_id = ?", (tenant_id,))["n"]
    return json_response({"created": count, "total": total}, 201)


def refresh_tokens(ctx):
    """Mint a refresh token as if the Admin Agent had signed in (Secure Application Model)."""
    body = _body(ctx)
    upn = body.get("userPrincipalName")
    tenant_id = body.get("tenantId", ctx.partner.tenant_id)
    user = (ctx.state.row("SELECT id FROM users WHERE tenant_id = ? AND upn = ?", (tenant_id, upn)) if upn
            else ctx.state.row("SELECT id FROM users WHERE tenant_id = ? ORDER BY seq LIMIT 1", (tenant_id,)))
    if user is None:
        raise _error(404, "user not found")
    with ctx.state.transaction():
        token = new_refresh_token(ctx.state, user_id=user["id"], tenant_id=tenant_id,
                                  client_id=ctx.partner.client_id, mfa=bool(body.get("mfa", True)),
                                  now=ctx.now)
    return json_response({"refresh_token": token}, 201)


def fraud_events(ctx):
    body = _body(ctx)
    sub = ctx.state.doc("SELECT doc FROM subscriptions WHERE json_extract(doc, '$.azureEntitlementId') = ?",
                        (body.get("subscriptionId", ""),))
    if sub is None:
        raise _error(400, "subscriptionId must be an Azure entitlement id of an Azure plan")
    try:
        with ctx.state.transaction():
            doc = fraud.new_event(ctx.state, partner_tenant_id=ctx.partner.tenant_id,
                                  customer_id=sub["customerId"], azure_subscription_id=body["subscriptionId"],
                                  event_type=body.get("eventType", fraud.OLD_MODEL_TYPE),
                                  status=body.get("eventStatus", "Active"), at=ctx.now,
                                  rng=random.Random())
    except ValueError as exc:
        raise _error(400, str(exc)) from None
    return json_response(doc, 201)


def app_certificates(ctx):
    """The partner app registration's certificates (public PEM), for certificate credentials."""
    if ctx.request.method == "POST":
        pem = _body(ctx).get("certificate")
        if not isinstance(pem, str):
            raise _error(400, "certificate (PEM) required")
        try:
            return json_response(certificates.register(ctx.state, pem), 201)
        except ValueError:
            raise _error(400, "certificate is not a PEM X.509 certificate") from None
    return json_response({"certificates": certificates.registered(ctx.state)})


def close_billing_period(ctx):
    invoice = billing.close_period(ctx.state, ctx.now)
    if invoice is None:
        raise _error(400, "no unbilled line items")
    return json_response(invoice, 201)


def password_check(ctx, tenant_id: str, user_key: str):
    """What signing in would tell: does this password open the account, and must it be changed?"""
    body = _body(ctx)
    if not isinstance(body.get("password"), str):
        raise _error(400, "password (a string) is required")
    doc = load_user(ctx, tenant_id, user_key)
    record = doc.get("_password") or {}
    return json_response({"matches": password_matches(doc, body["password"]),
                          "forceChangePasswordNextSignIn": bool(record.get("forceChangePasswordNextSignIn")),
                          "accountEnabled": bool(doc.get("accountEnabled", True)),
                          "signInSessionsValidFromDateTime": doc.get("signInSessionsValidFromDateTime")})


C = "/_emulator"
ROUTES = [
    Rule(f"{C}", endpoint=info, methods=["GET"]),
    Rule(f"{C}/reset", endpoint=reset, methods=["POST"]),
    Rule(f"{C}/clock", endpoint=clock, methods=["GET", "POST"]),
    Rule(f"{C}/settings", endpoint=settings, methods=["GET", "PATCH"]),
    Rule(f"{C}/faults", endpoint=faults, methods=["GET", "POST", "DELETE"]),
    Rule(f"{C}/ratelimits", endpoint=rate_limits, methods=["POST"]),
    Rule(f"{C}/throttling", endpoint=throttling, methods=["GET", "PATCH"]),
    Rule(f"{C}/requests", endpoint=requests_log, methods=["GET", "DELETE"]),
    Rule(f"{C}/gdap/<relationship_id>/approve", endpoint=approve_gdap, methods=["POST"]),
    Rule(f"{C}/tenants/<tenant_id>/users", endpoint=bulk_users, methods=["POST"]),
    Rule(f"{C}/tenants/<tenant_id>/users/<user_key>/password-check", endpoint=password_check, methods=["POST"]),
    Rule(f"{C}/refresh-tokens", endpoint=refresh_tokens, methods=["POST"]),
    Rule(f"{C}/fraud-events", endpoint=fraud_events, methods=["POST"]),
    Rule(f"{C}/billing/close", endpoint=close_billing_period, methods=["POST"]),
    Rule(f"{C}/app-certificates", endpoint=app_certificates, methods=["GET", "POST"]),
]
