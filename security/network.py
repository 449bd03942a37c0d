"""IP addresses as the detectors see them: keyed indexes of the address and of its network, a
location from the shipped IP-to-location table, and allow-list matching.

This is the one place that turns an address into keys. The detectors compare keys only, so when
stored addresses are encrypted with a blind index beside them, only this module changes.

The location table (``security/data/ip-locations.csv``, or the file ``SECURITY_GEOIP_CSV`` names)
uses DB-IP's "IP to City Lite" columns; decision 022 says where the data comes from.
"""

from __future__ import annotations

import bisect
import csv
import ipaddress
from functools import lru_cache
from pathlib import Path

from django.conf import settings

from core.crypto import blind_index

from .detection import Location

IP_PURPOSE = "security.ip"
NETWORK_PURPOSE = "security.network"
IPV4_PREFIX = 24
IPV6_PREFIX = 48
DEFAULT_TABLE = Path(__file__).resolve().parent / "data" / "ip-locations.csv"


def _address(ip: str | None):
    if not ip:
        return None
    try:
        return ipaddress.ip_address(str(ip).strip())
    except ValueError:
        return None


def network_of(ip: str | None) -> str:
    """The /24 (IPv4) or /48 (IPv6) around the address, as text; empty for no or a bad address."""
    address = _address(ip)
    if address is None:
        return ""
    prefix = IPV4_PREFIX if address.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def ip_key(ip: str | None) -> str:
    address = _address(ip)
    return blind_index(IP_PURPOSE, str(address)) if address is not None else ""


def network_key(ip: str | None) -> str:
    network = network_of(ip)
    return blind_index(NETWORK_PURPOSE, network) if network else ""


def parse_networks(lines) -> list[str]:
    """CIDRs, one per item, normalised; ValueError naming the first that is not one."""
    networks = []
    for raw in lines:
        text = str(raw).strip()
        if not text:
            continue
        try:
            networks.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            raise ValueError(f"{text[:60]!r} is not an IP network such as 203.0.113.0/24 or 2001:db8::/48.") from None
    return networks


def in_networks(ip: str | None, networks) -> bool:
    address = _address(ip)
    if address is None:
        return False
    for text in networks:
        network = ipaddress.ip_network(text, strict=False)
        if network.version == address.version and address in network:
            return True
    return False


class LocationTable:
    """Sorted, non-overlapping ranges; a lookup is a binary search."""

    def __init__(self, rows):
        ranges = {4: [], 6: []}
        for first, last, country, city, latitude, longitude in rows:
            start, end = ipaddress.ip_address(first), ipaddress.ip_address(last)
            ranges[start.version].append(
                (int(start), int(end), Location(float(latitude), float(longitude), country, city))
            )
        self._starts, self._ranges = {}, {}
        for version, items in ranges.items():
            items.sort(key=lambda item: item[0])
            self._ranges[version] = items
            self._starts[version] = [item[0] for item in items]

    @classmethod
    def from_csv(cls, path: Path) -> LocationTable:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = csv.reader(line for line in handle if line.strip() and not line.startswith("#"))
            # DB-IP's file has a continent and a region between address and country: take what we need.
            return cls(_normalise_row(row) for row in rows)

    def locate(self, ip: str | None) -> Location | None:
        address = _address(ip)
        if address is None:
            return None
        value = int(address)
        starts = self._starts[address.version]
        index = bisect.bisect_right(starts, value) - 1
        if index < 0:
            return None
        start, end, location = self._ranges[address.version][index]
        return location if start <= value <= end else None


def _normalise_row(row: list[str]) -> tuple:
    if len(row) == 6:
        return tuple(row)
    if len(row) >= 8:  # ip_start, ip_end, continent, country, stateprov, city, latitude, longitude
        return row[0], row[1], row[3], row[5], row[6], row[7]
    raise ValueError(f"IP location row has {len(row)} columns; expected 6 or 8")


@lru_cache(maxsize=1)
def location_table() -> LocationTable:
    return LocationTable.from_csv(Path(getattr(settings, "SECURITY_GEOIP_CSV", "") or DEFAULT_TABLE))


def locate(ip: str | None) -> Location | None:
    return location_table().locate(ip)
