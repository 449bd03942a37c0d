"""Azure fraud events: list (old and new event model) and status updates (reference §2.8)."""

import json

from werkzeug.routing import Rule

from ..responses import field, json_response, pc_error, read_json
from ..state import iso
from .common import require_app_user

STATUSES = {"active": "Active", "investigating": "Investigating", "resolved": "Resolved"}
RESOLVED_REASONS = {"fraud": "Fraud", "ignore": "Ignore"}
EVENT_TYPES = ("ServiceHealthSecurityAdvisory", "UsageAnomalyDetection",
               "MultiRegionVirtualMachineScaleSetDeploymentAnomaly",
               "NetworkConnectionsToCryptoMiningPools", "VirtualMachineDeploymentAnomaly",
               "MultiRegionMachineLearningUsageAnomaly")
# Fields that only the new events model (header X-NewEventsModel: true) returns.
NEW_MODEL_FIELDS = ("firstObserved", "lastObserved", "eventType", "severity", "confidenceLevel",
                    "displayName", "description", "country", "valueAddedResellerTenantId",
                    "valueAddedResellerFriendlyName", "subscriptionName", "affectedResources",
                    "additionalDetails")
OLD_MODEL_TYPE = "NetworkConnectionsToCryptoMiningPools"


def _render(doc: dict, new_model: bool) -> dict:
    if new_model:
        return doc
    return {k: v for k, v in doc.items() if k not in NEW_MODEL_FIELDS}


def list_events(ctx):
    require_app_user(ctx)
    args = {k.lower(): v for k, v in ctx.request.args.items()}
    new_model = ctx.request.headers.get("X-NewEventsModel", "").lower() == "true"
    status = args.get("eventstatus")
    if status and status.lower() not in STATUSES:
        raise pc_error(400, 800002, f"Invalid request input: EventStatus {status} is not valid.")
    subscription = args.get("subscriptionid")
    if subscription:
        docs = ctx.state.docs("SELECT doc FROM fraud_events WHERE subscription_id = ? ORDER BY seq",
                              (subscription,))
    else:
        docs = ctx.state.docs("SELECT doc FROM fraud_events ORDER BY seq")
    if status:
        docs = [d for d in docs if d["eventStatus"] == STATUSES[status.lower()]]
    if not new_model:
        docs = [d for d in docs if d["eventType"] == OLD_MODEL_TYPE]
    else:
        if args.get("eventtype"):
            docs = [d for d in docs if d["eventType"].lower() == args["eventtype"].lower()]
        if args.get("pagesize"):
            try:
                size, number = int(args["pagesize"]), int(args.get("pagenumber", 1))
            except ValueError:
                raise pc_error(400, 800002, "Invalid request input: PageSize/PageNumber.") from None
            docs = docs[(number - 1) * size: number * size]
    return json_response([_render(d, new_model) for d in docs])


def update_status(ctx, subscription_id: str):
    require_app_user(ctx)
    body = read_json(ctx.request)
    status = STATUSES.get(str(field(body, "eventStatus", "")).lower())
    if status is None:
        raise pc_error(400, 800002, "Invalid request input: eventStatus must be Active, "
                                    "Investigating or Resolved.")
    reason = field(body, "resolvedReason")
    if status == "Resolved":
        reason = RESOLVED_REASONS.get(str(reason or "").lower())
        if reason is None:
            raise pc_error(400, 800002, "Invalid request input: resolvedReason (Fraud or Ignore) is "
                                        "required when resolving.")
    wanted = set(field(body, "eventIds") or [])
    actor = ctx.claims.get("upn", "")
    updated = []
    with ctx.state.transaction():
        for row in ctx.state.rows("SELECT seq, doc FROM fraud_events WHERE subscription_id = ?"
                                  " ORDER BY seq", (subscription_id,)):
            doc = json.loads(row["doc"])
            if wanted and doc["eventId"] not in wanted:
                continue
            logs = json.loads(doc["activityLogs"])
            logs.append({"statusFrom": doc["eventStatus"], "statusTo": status, "updatedBy": actor,
                         "dateTime": iso(ctx.now)})
            doc.update({"eventStatus": status, "activityLogs": json.dumps(logs)})
            if status == "Resolved":
                doc.update({"resolvedReason": reason, "resolvedOn": iso(ctx.now), "resolvedBy": actor})
            ctx.state.execute("UPDATE fraud_events SET doc = ? WHERE seq = ?", (json.dumps(doc), row["seq"]))
            updated.append(doc)
    if not updated:
        raise pc_error(404, 1000, f"No fraud events found for subscription {subscription_id}.")
    new_model = ctx.request.headers.get("X-NewEventsModel", "").lower() == "true"
    return json_response([_render(d, new_model) for d in updated])


P = "/partnercenter/v1"
ROUTES = [
    Rule(f"{P}/fraudEvents", endpoint=list_events, methods=["GET"]),
    Rule(f"{P}/fraudEvents/subscription/<subscription_id>/status", endpoint=update_status,
         methods=["POST"]),
]


def new_event(state, *, partner_tenant_id: str, customer_id: str, azure_subscription_id: str,
              event_type: str, status: str, at, rng) -> dict:
    """Record a fraud event in the documented shape (strings for numbers and booleans)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"eventType must be one of {', '.join(EVENT_TYPES)}")
    customer = state.doc("SELECT doc FROM customers WHERE id = ?", (customer_id,))
    entity = f"{rng.getrandbits(128):032x}"
    stamp = iso(at)
    doc = {
        "eventTime": stamp, "eventId": f"{azure_subscription_id}_{entity}",
        "partnerTenantId": partner_tenant_id, "partnerFriendlyName": "Contoso Cloud Partners",
        "customerTenantId": customer_id,
        "customerFriendlyName": customer["companyProfile"]["companyName"],
        "subscriptionId": azure_subscription_id, "subscriptionType": "modern", "entityId": entity,
        "entityName": "vm-build-01", "entityUrl": "\\subscriptions\\vm-build-01",
        "hitCount": str(rng.randint(1, 40)), "catalogOfferId": "ms-azr-17g", "eventStatus": status,
        "serviceName": "Microsoft.Compute", "resourceName": "vm-build-01",
        "resourceGroupName": "rg-build", "firstOccurrence": stamp, "lastOccurrence": stamp,
        "resolvedReason": "None", "resolvedOn": "9999-12-31T23:59:59.997", "resolvedBy": "",
        "firstObserved": stamp, "lastObserved": stamp, "eventType": event_type,
        "severity": "High" if event_type == OLD_MODEL_TYPE else "Medium", "confidenceLevel": "High",
        "displayName": event_type, "description": f"{event_type} detected on vm-build-01.",
        "country": "US", "valueAddedResellerTenantId": "", "valueAddedResellerFriendlyName": "",
        "subscriptionName": "Azure subscription 1",
        "affectedResources": [{"azureResourceId": f"/subscriptions/{azure_subscription_id}/resourceGroups"
                                                  "/rg-build/providers/Microsoft.Compute/virtualMachines"
                                                  "/vm-build-01",
                               "type": "Microsoft.Compute/virtualMachines"}],
        "additionalDetails": {"resourceid": entity, "vM_IP": "[\"13.89.185.189\"]",
                              "miningPool_IP": "[\"104.243.33.118\"]",
                              "connectionCount": str(rng.randint(5, 60))},
        "isTest": "false", "activityLogs": "[]",
    }
    state.execute("INSERT INTO fraud_events (event_id, subscription_id, doc) VALUES (?, ?, ?)",
                  (doc["eventId"], azure_subscription_id, json.dumps(doc)))
    return doc
