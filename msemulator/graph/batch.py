"""JSON batching: up to 20 requests, dependsOn, per-request throttling (reference §3.4)."""

import json

from werkzeug.routing import Rule
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from ..responses import graph_error, json_response

MAX_REQUESTS = 20


def _inner_path(url: str) -> str:
    """Graph takes inner URLs relative to the version root with or without the leading slash
    ("/users/x" and "users/x" are the same request)."""
    return f"/graph/v1.0/{url.lstrip('/')}"


def batch(ctx):
    try:
        body = json.loads(ctx.request.data or b"{}")
        requests = body["requests"]
        assert isinstance(requests, list)
    except (ValueError, KeyError, AssertionError):
        raise graph_error(400, "BadRequest", "Invalid batch payload format.") from None
    if len(requests) > MAX_REQUESTS:
        raise graph_error(400, "BadRequest", f"Limit on the number of requests in a batch is "
                                             f"{MAX_REQUESTS}.")
    ids = [str(r.get("id")) for r in requests]
    if len(set(ids)) != len(ids):
        raise graph_error(400, "BadRequest", "Batch request contains duplicate request ids.")
    statuses: dict[str, int] = {}
    responses = []
    for item in requests:
        item_id = str(item.get("id"))
        failed = [d for d in item.get("dependsOn") or [] if statuses.get(str(d), 424) >= 400]
        if failed:
            statuses[item_id] = 424
            responses.append({"id": item_id, "status": 424, "headers": {}, "body": {"error": {
                "code": "FailedDependency", "message": "Dependent request failed."}}})
            continue
        headers = dict((item.get("headers") or {}).items())
        headers["Authorization"] = ctx.request.headers.get("Authorization", "")
        builder = EnvironBuilder(path=_inner_path(item.get("url", "")),
                                 method=item.get("method", "GET").upper(), headers=headers,
                                 base_url=ctx.base_url,
                                 data=json.dumps(item["body"]) if "body" in item else None)
        response = ctx.dispatch(Request(builder.get_environ()), inner=True)
        data = response.get_data()
        statuses[item_id] = response.status_code
        entry = {"id": item_id, "status": response.status_code,
                 "headers": {k: v for k, v in response.headers.items()
                             if k.lower() in ("content-type", "retry-after", "location", "x-ms-throttle-scope",
                                            "x-ms-throttle-information")}}
        if data:
            entry["body"] = (json.loads(data) if response.mimetype == "application/json"
                             else data.decode())
        responses.append(entry)
    return json_response({"responses": responses})


ROUTES = [Rule("/graph/v1.0/$batch", endpoint=batch, methods=["POST"])]
