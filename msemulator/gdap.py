"""GDAP delegated admin relationships in the partner tenant (Graph, reference §4)."""

import base64
import json
import re
import uuid
from datetime import timedelta

from werkzeug.routing import Rule

from .graph.common import GLOBAL_ADMIN, require_partner_tenant
from .responses import empty_response, graph_error, json_response
from .state import iso, parse_iso

ROLE = "DelegatedAdminRelationship.ReadWrite.All"
DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)D)?$")
AUTO_EXTEND = {"PT0S": 0, "P0D": 0, "P180D": 180}
MAX_DAYS = 730
APPROVAL_EXPIRY = timedelta(days=90)


def _days(duration: str) -> int | None:
    match = DURATION.match(duration or "")
    if not match or not any(match.groups()):
        return None
    return int(match[1] or 0) * 365 + int(match[2] or 0)


def _etag(doc: dict) -> str:
    return 'W/"' + base64.b64encode(f"v{doc['version']}".encode()).decode() + '"'


def _render(ctx, doc: dict) -> dict:
    return {"@odata.etag": _etag(doc), **{k: v for k, v in doc.items() if k != "version"}}


def _save(state, doc: dict) -> None:
    state.execute("UPDATE gdap_relationships SET doc = ?, display_name = ? WHERE id = ?",
                  (json.dumps(doc), doc["displayName"], doc["id"]))


def _has_global_admin(doc: dict) -> bool:
    return any(r["roleDefinitionId"] == GLOBAL_ADMIN for r in doc["accessDetails"]["unifiedRoles"])


def settle(state, now) -> None:
    """Expire or auto-extend active relationships; expire unapproved requests after 90 days."""
    for doc in state.docs("SELECT doc FROM gdap_relationships"):
        changed = False
        if doc["status"] == "active" and parse_iso(doc["endDateTime"]) <= now:
            extend = AUTO_EXTEND.get(doc["autoExtendDuration"], 0)
            while extend and parse_iso(doc["endDateTime"]) <= now:
                doc["endDateTime"] = iso(parse_iso(doc["endDateTime"]) + timedelta(days=extend))
            if not extend:
                doc["status"] = "expired"
            changed = True
        elif doc["status"] == "approvalPending" and parse_iso(doc["lastModifiedDateTime"]) + APPROVAL_EXPIRY <= now:
            doc["status"] = "expired"
            changed = True
        if changed:
            doc["version"] += 1
            _save(state, doc)


def _validate(ctx, body: dict, roles: list) -> None:
    if "duration" in body:
        days = _days(body["duration"])
        if days is None or not 1 <= days <= MAX_DAYS:
            raise graph_error(400, "badRequest", "The duration must be between P1D and P730D (2 years).")
    if "autoExtendDuration" in body:
        if body["autoExtendDuration"] not in AUTO_EXTEND:
            raise graph_error(400, "badRequest", "autoExtendDuration must be PT0S, P0D or P180D.")
        if (AUTO_EXTEND[body["autoExtendDuration"]] and any(r.get("roleDefinitionId") == GLOBAL_ADMIN
                                                            for r in roles)
                and not ctx.settings["gdapAutoExtendWithGlobalAdmin"]):
            raise graph_error(400, "badRequest", "Auto extend is not allowed for relationships that "
                                                 "contain the Global Administrator role.")
    if "displayName" in body and not 1 <= len(body["displayName"] or "") <= 50:
        raise graph_error(400, "badRequest", "displayName must be 1 to 50 characters.")


def _body(ctx) -> dict:
    try:
        body = json.loads(ctx.request.data or b"{}")
    except ValueError:
        raise graph_error(400, "BadRequest", "Unable to read JSON request payload.") from None
    return body if isinstance(body, dict) else {}


def _relationship(ctx, relationship_id: str) -> dict:
    doc = ctx.state.doc("SELECT doc FROM gdap_relationships WHERE id = ?", (relationship_id,))
    if doc is None:
        raise graph_error(404, "NotFound", f"Relationship {relationship_id} not found.")
    return doc


def create_relationship(ctx):
    require_partner_tenant(ctx, ROLE)
    body = _body(ctx)
    roles = (body.get("accessDetails") or {}).get("unifiedRoles") or []
    customer = body.get("customer") or {}
    for name in ("displayName", "duration"):
        if not body.get(name):
            raise graph_error(400, "badRequest", f"The property '{name}' is required.")
    if not roles:
        raise graph_error(400, "badRequest", "accessDetails.unifiedRoles must not be empty.")
    body.setdefault("autoExtendDuration", "PT0S")
    _validate(ctx, body, roles)
    stamp = iso(ctx.now)
    tenant_id = customer.get("tenantId", "")
    doc = {"id": f"{tenant_id}-{uuid.uuid4()}" if tenant_id else str(uuid.uuid4()),
           "displayName": body["displayName"], "duration": body["duration"],
           "customer": {"tenantId": tenant_id, "displayName": customer.get("displayName", "")},
           "accessDetails": {"unifiedRoles": [{"roleDefinitionId": r["roleDefinitionId"]} for r in roles]},
           "status": "created", "autoExtendDuration": body["autoExtendDuration"],
           "createdDateTime": stamp, "lastModifiedDateTime": stamp, "activatedDateTime": None,
           "endDateTime": None, "version": 1}
    with ctx.state.transaction():
        if ctx.state.row("SELECT 1 FROM gdap_relationships WHERE display_name = ?", (doc["displayName"],)):
            raise graph_error(409, "conflict", "A relationship with this displayName already exists.")
        ctx.state.execute("INSERT INTO gdap_relationships (id, customer_tenant_id, display_name, doc)"
                          " VALUES (?, ?, ?, ?)",
                          (doc["id"], tenant_id, doc["displayName"], json.dumps(doc)))
    location = f"{ctx.graph_base}/tenantRelationships/delegatedAdminRelationships/{doc['id']}"
    return json_response(_render(ctx, doc), 201, {"Location": location})


def list_relationships(ctx):
    require_partner_tenant(ctx, ROLE)
    docs = ctx.state.docs("SELECT doc FROM gdap_relationships ORDER BY seq")
    flt = ctx.request.args.get("$filter", "")
    match = re.match(r"^\s*(status|customer/tenantId)\s+eq\s+'([^']*)'\s*$", flt)
    if flt and not match:
        raise graph_error(400, "badRequest", "Unsupported $filter.")
    if match:
        key = match[2]
        docs = [d for d in docs if (d["status"] if match[1] == "status"
                                    else d["customer"]["tenantId"]) == key]
    return json_response({"@odata.context": f"{ctx.graph_base}/$metadata#tenantRelationships/"
                                            "delegatedAdminRelationships",
                          "value": [_render(ctx, d) for d in docs]})


def get_relationship(ctx, relationship_id: str):
    require_partner_tenant(ctx, ROLE)
    return json_response(_render(ctx, _relationship(ctx, relationship_id)))


def update_relationship(ctx, relationship_id: str):
    require_partner_tenant(ctx, ROLE)
    body = _body(ctx)
    with ctx.state.transaction():
        doc = _relationship(ctx, relationship_id)
        if_match = ctx.request.headers.get("If-Match")
        if not if_match:
            raise graph_error(400, "badRequest", "The If-Match header is required.")
        if if_match != _etag(doc):
            raise graph_error(412, "preconditionFailed", "The etag does not match the current version.")
        allowed = ({"displayName", "duration", "accessDetails", "autoExtendDuration", "customer"}
                   if doc["status"] == "created" else {"autoExtendDuration"}
                   if doc["status"] == "active" else set())
        if set(body) - allowed:
            raise graph_error(400, "badRequest", f"The relationship cannot be updated in status "
                                                 f"'{doc['status']}'.")
        roles = (body.get("accessDetails") or doc["accessDetails"])["unifiedRoles"]
        _validate(ctx, body, roles)
        doc.update(body)
        doc["lastModifiedDateTime"] = iso(ctx.now)
        doc["version"] += 1
        _save(ctx.state, doc)
    return json_response(_render(ctx, doc))


def delete_relationship(ctx, relationship_id: str):
    require_partner_tenant(ctx, ROLE)
    with ctx.state.transaction():
        doc = _relationship(ctx, relationship_id)
        if doc["status"] != "created":
            raise graph_error(400, "badRequest", "Only relationships in status 'created' can be deleted.")
        ctx.state.execute("DELETE FROM gdap_relationships WHERE id = ?", (relationship_id,))
    return empty_response(204)


def create_request(ctx, relationship_id: str):
    require_partner_tenant(ctx, ROLE)
    action = _body(ctx).get("action")
    with ctx.state.transaction():
        doc = _relationship(ctx, relationship_id)
        if action == "lockForApproval" and doc["status"] == "created":
            doc["status"] = "approvalPending"
        elif action == "terminate" and doc["status"] == "active":
            doc.update({"status": "terminated", "endDateTime": iso(ctx.now)})
        else:
            raise graph_error(400, "badRequest", f"Action '{action}' is not allowed in status "
                                                 f"'{doc['status']}'.")
        doc["lastModifiedDateTime"] = iso(ctx.now)
        doc["version"] += 1
        _save(ctx.state, doc)
        request = {"id": str(uuid.uuid4()), "action": action, "status": "created",
                   "createdDateTime": iso(ctx.now), "lastModifiedDateTime": iso(ctx.now)}
        ctx.state.execute("INSERT INTO gdap_requests (id, relationship_id, doc) VALUES (?, ?, ?)",
                          (request["id"], relationship_id, json.dumps(request)))
    return json_response(request, 201)


def approve(state, relationship_id: str, now) -> dict | None:
    """Customer approval (control API): approvalPending -> active."""
    with state.transaction():
        doc = state.doc("SELECT doc FROM gdap_relationships WHERE id = ?", (relationship_id,))
        if doc is None or doc["status"] != "approvalPending":
            return None
        doc.update({"status": "active", "activatedDateTime": iso(now),
                    "endDateTime": iso(now + timedelta(days=_days(doc["duration"]))),
                    "lastModifiedDateTime": iso(now)})
        doc["version"] += 1
        _save(state, doc)
    return doc


def create_assignment(ctx, relationship_id: str):
    require_partner_tenant(ctx, ROLE)
    body = _body(ctx)
    container = body.get("accessContainer") or {}
    roles = (body.get("accessDetails") or {}).get("unifiedRoles") or []
    with ctx.state.transaction():
        rel = _relationship(ctx, relationship_id)
        if rel["status"] != "active":
            raise graph_error(400, "badRequest", "Access assignments require an active relationship.")
        allowed = {r["roleDefinitionId"] for r in rel["accessDetails"]["unifiedRoles"]}
        if not roles or not {r.get("roleDefinitionId") for r in roles} <= allowed:
            raise graph_error(400, "badRequest", "The roles must be a subset of the relationship's roles.")
        if container.get("accessContainerType") != "securityGroup" or not container.get("accessContainerId"):
            raise graph_error(400, "badRequest", "accessContainer must name a securityGroup.")
        stamp = iso(ctx.now)
        doc = {"id": str(uuid.uuid4()), "accessContainer": container,
               "accessDetails": {"unifiedRoles": [{"roleDefinitionId": r["roleDefinitionId"]} for r in roles]},
               "status": "pending", "createdDateTime": stamp, "lastModifiedDateTime": stamp, "version": 1}
        ctx.state.execute("INSERT INTO gdap_assignments (id, relationship_id, doc) VALUES (?, ?, ?)",
                          (doc["id"], relationship_id, json.dumps({**doc, "status": "active"})))
    return json_response(_render(ctx, doc), 201)


def list_assignments(ctx, relationship_id: str):
    require_partner_tenant(ctx, ROLE)
    _relationship(ctx, relationship_id)
    docs = ctx.state.docs("SELECT doc FROM gdap_assignments WHERE relationship_id = ? ORDER BY seq",
                          (relationship_id,))
    return json_response({"@odata.context": f"{ctx.graph_base}/$metadata#tenantRelationships/"
                                            f"delegatedAdminRelationships('{relationship_id}')/accessAssignments",
                          "value": [_render(ctx, d) for d in docs]})


def get_assignment(ctx, relationship_id: str, assignment_id: str):
    require_partner_tenant(ctx, ROLE)
    doc = ctx.state.doc("SELECT doc FROM gdap_assignments WHERE relationship_id = ? AND id = ?",
                        (relationship_id, assignment_id))
    if doc is None:
        raise graph_error(404, "NotFound", f"Access assignment {assignment_id} not found.")
    return json_response(_render(ctx, doc))


def delete_assignment(ctx, relationship_id: str, assignment_id: str):
    require_partner_tenant(ctx, ROLE)
    deleted = ctx.state.execute("DELETE FROM gdap_assignments WHERE relationship_id = ? AND id = ?",
                                (relationship_id, assignment_id)).rowcount
    if not deleted:
        raise graph_error(404, "NotFound", f"Access assignment {assignment_id} not found.")
    return empty_response(204)


P = "/graph/v1.0/tenantRelationships/delegatedAdminRelationships"
ROUTES = [
    Rule(P, endpoint=list_relationships, methods=["GET"]),
    Rule(P, endpoint=create_relationship, methods=["POST"]),
    Rule(f"{P}/<relationship_id>", endpoint=get_relationship, methods=["GET"]),
    Rule(f"{P}/<relationship_id>", endpoint=update_relationship, methods=["PATCH"]),
    Rule(f"{P}/<relationship_id>", endpoint=delete_relationship, methods=["DELETE"]),
    Rule(f"{P}/<relationship_id>/requests", endpoint=create_request, methods=["POST"]),
    Rule(f"{P}/<relationship_id>/accessAssignments", endpoint=list_assignments, methods=["GET"]),
    Rule(f"{P}/<relationship_id>/accessAssignments", endpoint=create_assignment, methods=["POST"]),
    Rule(f"{P}/<relationship_id>/accessAssignments/<assignment_id>", endpoint=get_assignment,
         methods=["GET"]),
    Rule(f"{P}/<relationship_id>/accessAssignments/<assignment_id>", endpoint=delete_assignment,
         methods=["DELETE"]),
]
