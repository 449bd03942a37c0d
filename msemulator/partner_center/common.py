"""Partner Center conventions shared by the resource modules (reference §2.1)."""

import base64
import json
import secrets
import uuid

from ..identity import PC_RESOURCE
from ..responses import pc_error

AUDIENCE = PC_RESOURCE
CONTINUATION_HEADER = "MS-ContinuationToken"


def new_id() -> str:
    return str(uuid.uuid4())


def short_id() -> str:
    """Order ids look like `a68736758d9c`."""
    return secrets.token_hex(6)


def link(uri: str, method: str = "GET", headers: list | None = None) -> dict:
    return {"uri": uri, "method": method, "headers": headers or []}


def collection(items: list, self_uri: str, *, next_uri: str | None = None,
               continuation: str | None = None, total: int | None = None) -> dict:
    links = {"self": link(self_uri)}
    if next_uri and continuation:
        links["next"] = link(next_uri, headers=[{"key": CONTINUATION_HEADER, "value": continuation}])
    return {"totalCount": len(items) if total is None else total, "items": items, "links": links,
            "attributes": {"objectType": "Collection"}}


def encode_continuation(position: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": position}).encode()).decode()


def decode_continuation(request) -> int:
    if request.args.get("seekOperation", "").lower() != "next":
        return 0
    raw = request.headers.get(CONTINUATION_HEADER, "")
    try:
        return int(json.loads(base64.urlsafe_b64decode(raw.encode()))["after"])
    except (ValueError, KeyError, TypeError):
        raise pc_error(400, 800002, "Invalid request input: continuation token is invalid.") from None


def page_size(request, default: int, maximum: int) -> int:
    try:
        size = int(request.args.get("size", default))
    except ValueError:
        raise pc_error(400, 800002, "Invalid request input: size must be an integer.") from None
    return max(1, min(size, maximum))


def require_customer(ctx, customer_id: str) -> dict:
    doc = ctx.state.doc("SELECT doc FROM customers WHERE id = ?", (customer_id.lower(),))
    if doc is None:
        raise pc_error(404, 60003, f"Tenant not found: {customer_id}.", error_name="TenantNotFound")
    return doc


def require_app_user(ctx) -> None:
    """Fraud events and licence updates are App+User only (reference §1.1)."""
    if ctx.claims.get("idtyp") != "user":
        raise pc_error(403, 900329, "This resource does not support application-only authentication.")
