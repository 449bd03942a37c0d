"""Seeded partner identity; override with environment variables."""

import os
from dataclasses import dataclass

DEFAULT_PARTNER_TENANT_ID = "8a1f4c2e-6b3d-4e7a-9c51-2d0f3b6a7e94"
DEFAULT_CLIENT_ID = "5c2d8e1f-3a4b-4c6d-8e9f-0a1b2c3d4e5f"
DEFAULT_CLIENT_SECRET = "msemulator-dev-secret"
PARTNER_DOMAIN = "contosopartner.onmicrosoft.com"
PARTNER_NAME = "Contoso Cloud Partners"
# The Admin Agent who signs in for App+User (Secure Application Model) flows.
ADMIN_AGENT_UPN = f"adminagent@{PARTNER_DOMAIN}"
ADMIN_AGENT_ID = "0f6c1b2a-9d8e-4f7a-b6c5-d4e3f2a1b0c9"


@dataclass(frozen=True)
class PartnerConfig:
    tenant_id: str
    client_id: str
    client_secret: str

    @classmethod
    def from_env(cls) -> "PartnerConfig":
        return cls(
            tenant_id=os.environ.get("MSEMULATOR_PARTNER_TENANT_ID", DEFAULT_PARTNER_TENANT_ID),
            client_id=os.environ.get("MSEMULATOR_CLIENT_ID", DEFAULT_CLIENT_ID),
            client_secret=os.environ.get("MSEMULATOR_CLIENT_SECRET", DEFAULT_CLIENT_SECRET),
        )
