"""What Partner Center and Graph clients share: the transport call with the disclosure choke point."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

import requests

from . import disclosure
from .disclosure import PersonalData
from .http import MicrosoftHttp


class ApiBase:
    # Whether the API de-duplicates writes by MS-RequestId, so that a write that got no answer may
    # be sent again with the same id (see http.py). Reads are always safe to send again.
    dedupes_writes_by_request_id = False

    def __init__(self, *, http: MicrosoftHttp, base_url: str):
        self.http = http
        self.base_url = base_url.rstrip("/")

    def _send(
        self,
        method: str,
        url: str,
        *,
        token: Callable[[], str] | None,
        operation: str,
        personal: PersonalData | None = None,
        request_id: str | None = None,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """Every request goes through here; a request carrying personal data is logged first."""
        request_id = request_id or str(uuid.uuid4())
        if personal is not None:
            disclosure.record(personal, operation=operation, request_id=request_id)
        return self.http.request(
            method,
            url,
            token=token,
            json=json,
            params=params,
            headers=headers,
            request_id=request_id,
            stream=stream,
            replay_safe=True if self.dedupes_writes_by_request_id else None,
        )
