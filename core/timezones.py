"""One rule for showing times: in the organisation's time zone, UTC when it has none or an unknown one."""

import zoneinfo


def organization_zone(organization) -> zoneinfo.ZoneInfo:
    """The organisation's time zone for display; UTC if the stored name is unknown."""
    try:
        return zoneinfo.ZoneInfo(organization.time_zone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")
