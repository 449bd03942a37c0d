"""Microsoft's public downloads: files on download.microsoft.com, fetched without a token.

- :meth:`MicrosoftDownloads.service_plans`: "Product names and service plan identifiers for
  licensing", the list behind the admin center's names. Graph's subscribedSkus carries only plan codes
  (``EXCHANGE_S_STANDARD``); this file maps each plan id to its friendly name ("Exchange Online (Plan 1)").
  Its address is ``settings.MS_PRODUCT_NAMES_URL``, else :func:`product_names_url`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from .http import MicrosoftHttp

PRODUCT_NAMES_PATH = ("/download/e/3/e/e3e9faf2-f28b-490a-9ada-c6089a1fc5b0/"
                      "Product%20names%20and%20service%20plan%20identifiers%20for%20licensing.csv")
MICROSOFT_SIGN_IN_HOST = "login.microsoftonline.com"


def product_names_url(authority_host: str) -> str:
    """Microsoft's download when signing in at Microsoft; otherwise the emulator's copy, on its own host."""
    if MICROSOFT_SIGN_IN_HOST in authority_host:
        return f"https://download.microsoft.com{PRODUCT_NAMES_PATH}"
    return f"{authority_host.rstrip('/')}{PRODUCT_NAMES_PATH}"


@dataclass(frozen=True)
class ServicePlanName:
    service_plan_id: str
    name: str
    friendly_name: str


class MicrosoftDownloads:
    def __init__(self, *, http: MicrosoftHttp, product_names_url: str):
        self.http = http
        self.product_names_url = product_names_url

    def service_plans(self) -> Iterator[ServicePlanName]:
        """Each service plan once (the file repeats a plan under every product that includes it)."""
        response = self.http.request("GET", self.product_names_url, token=None)
        seen: set[str] = set()
        for row in csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))):
            plan_id = (row.get("Service_Plan_Id") or "").strip().lower()
            if not plan_id or plan_id in seen:
                continue
            seen.add(plan_id)
            name = (row.get("Service_Plan_Name") or "").strip()
            yield ServicePlanName(plan_id, name, (row.get("Service_Plans_Included_Friendly_Names") or "").strip()
                                  or name)
