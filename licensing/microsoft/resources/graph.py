"""Typed results of Graph calls: subscribed SKUs, directory users and their licenses, $batch results,
GDAP relationships, billing exports."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .parsing import parse_datetime


@dataclass(frozen=True)
class SubscribedSku:
    id: str
    sku_id: str
    sku_part_number: str
    capability_status: str
    enabled: int
    consumed: int
    suspended: int
    raw: dict = field(repr=False)

    @property
    def available(self) -> int:
        return self.enabled - self.consumed

    @classmethod
    def from_json(cls, data: dict) -> SubscribedSku:
        prepaid = data.get("prepaidUnits") or {}
        return cls(
            id=data.get("id", ""),
            sku_id=data["skuId"],
            sku_part_number=data.get("skuPartNumber", ""),
            capability_status=data.get("capabilityStatus", ""),
            enabled=int(prepaid.get("enabled", 0)),
            consumed=int(data.get("consumedUnits", 0)),
            suspended=int(prepaid.get("suspended", 0)),
            raw=data,
        )


@dataclass(frozen=True)
class DirectoryUser:
    id: str
    user_principal_name: str
    display_name: str
    account_enabled: bool | None
    usage_location: str | None
    assigned_sku_ids: list[str]
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: dict) -> DirectoryUser:
        return cls(
            id=data["id"],
            user_principal_name=data.get("userPrincipalName", ""),
            display_name=data.get("displayName", ""),
            account_enabled=data.get("accountEnabled"),
            usage_location=data.get("usageLocation"),
            assigned_sku_ids=[a["skuId"] for a in data.get("assignedLicenses") or []],
            raw=data,
        )


@dataclass(frozen=True)
class LicenseDetail:
    id: str
    sku_id: str
    sku_part_number: str
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: dict) -> LicenseDetail:
        return cls(data.get("id", ""), data["skuId"], data.get("skuPartNumber", ""), data)


@dataclass(frozen=True)
class LicenseChange:
    """One user's assignLicense call inside a batch."""

    user_id: str
    add_sku_ids: list[str] = field(default_factory=list)
    remove_sku_ids: list[str] = field(default_factory=list)
    disabled_plans: dict[str, list[str]] = field(default_factory=dict)

    def body(self) -> dict:
        # Graph requires both arrays, even when empty (reference §3.3).
        return {
            "addLicenses": [{"skuId": s, "disabledPlans": self.disabled_plans.get(s, [])} for s in self.add_sku_ids],
            "removeLicenses": list(self.remove_sku_ids),
        }


@dataclass(frozen=True)
class BatchItemResult:
    """Per-item outcome of a $batch: ``error`` is the typed error when the item failed."""

    key: str
    status: int
    body: Any
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class GdapRelationship:
    id: str
    display_name: str
    status: str
    customer_tenant_id: str
    duration: str
    etag: str
    end_date_time: datetime | None
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: dict) -> GdapRelationship:
        return cls(
            id=data["id"],
            display_name=data.get("displayName", ""),
            status=data.get("status", ""),
            customer_tenant_id=(data.get("customer") or {}).get("tenantId", ""),
            duration=data.get("duration", ""),
            etag=data.get("@odata.etag", ""),
            end_date_time=parse_datetime(data.get("endDateTime")),
            raw=data,
        )


@dataclass(frozen=True)
class GdapAccessAssignment:
    id: str
    status: str
    security_group_id: str
    role_ids: list[str]
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: dict) -> GdapAccessAssignment:
        container = data.get("accessContainer") or {}
        roles = ((data.get("accessDetails") or {}).get("unifiedRoles")) or []
        return cls(
            data["id"],
            data.get("status", ""),
            container.get("accessContainerId", ""),
            [r["roleDefinitionId"] for r in roles],
            data,
        )


@dataclass(frozen=True)
class ExportManifest:
    id: str
    root_directory: str
    sas_token: str = field(repr=False)
    blob_names: list[str] = field(default_factory=list)
    data_format: str = ""

    @classmethod
    def from_json(cls, data: dict) -> ExportManifest:
        return cls(
            id=data["id"],
            root_directory=data.get("rootDirectory", ""),
            sas_token=data.get("sasToken", ""),
            blob_names=[b["name"] for b in data.get("blobs") or []],
            data_format=data.get("dataFormat", ""),
        )
