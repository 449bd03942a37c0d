"""Per-request context: the request id and the client address.

They travel with log lines, audit events and API errors without being passed
through every call.
"""

import contextvars
import uuid

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_client_ip: contextvars.ContextVar[str | None] = contextvars.ContextVar("client_ip", default=None)
# Further fields for structured logs (actor, task id, operation id): ids only, never personal data.
_log_fields: contextvars.ContextVar[dict] = contextvars.ContextVar("log_fields", default={})  # noqa: B039


def get_request_id() -> str:
    return _request_id.get()


def get_client_ip() -> str | None:
    return _client_ip.get()


def set_request_context(request_id: str | None, client_ip: str | None) -> tuple:
    """Start a request's context; the bound log fields start empty and end with it."""
    return (_request_id.set(request_id or uuid.uuid4().hex), _client_ip.set(client_ip), _log_fields.set({}))


def reset_request_context(tokens: tuple) -> None:
    _request_id.reset(tokens[0])
    _client_ip.reset(tokens[1])
    _log_fields.reset(tokens[2])


def bind_log_context(**fields: str) -> contextvars.Token:
    """Add ids to every log line written in this context; returns a token for ``unbind_log_context``."""
    return _log_fields.set({**_log_fields.get(), **{k: str(v) for k, v in fields.items() if v not in (None, "")}})


def unbind_log_context(token: contextvars.Token) -> None:
    _log_fields.reset(token)


def get_log_context() -> dict:
    return _log_fields.get()
