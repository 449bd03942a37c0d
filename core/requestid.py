"""Per-request context: the request id and the client address.

They travel with log lines, audit events and API errors without being passed
through every call.
"""

import contextvars
import uuid

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_client_ip: contextvars.ContextVar[str | None] = contextvars.ContextVar("client_ip", default=None)


def get_request_id() -> str:
    return _request_id.get()


def get_client_ip() -> str | None:
    return _client_ip.get()


def set_request_context(request_id: str | None, client_ip: str | None) -> tuple:
    return (_request_id.set(request_id or uuid.uuid4().hex), _client_ip.set(client_ip))


def reset_request_context(tokens: tuple) -> None:
    _request_id.reset(tokens[0])
    _client_ip.reset(tokens[1])
