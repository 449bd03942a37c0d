"""IP addresses as the detectors see them: keyed indexes of the address and of its network, a
location from the shipped IP-to-location table, and allow-list matching.

The detectors compare keys only: the keyed indexes of ``core.blind_index``, the same ones stored
beside every encrypted address, so a stored attempt's keys are read from its columns.

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

from core import blind_index

from .detection import Location

DEFAULT_TABLE = Path(__file__).resolve().parent / "data" / "ip-locations.csv"


def _address(ip: str | None):
    if not ip:
        return None
    try:
        return ipaddress.ip_address(str(ip).strip())
    except ValueError:
        return None


# The keys are the stored columns' own (core.blind_index: sign-in events and sessions keep ip_index and
# ip_network_index beside the encrypted address), so history is matched by index, never by address.
def network_of(ip: str | None) -> str:
    """The /24 (IPv4) or /48 (IPv6) around the address, as text; empty for no or a bad address."""
    return blind_index.network_of(ip) or ""


def ip_key(ip: str | None) -> str:
    return blind_index.ip_index(ip) or ""


def network_key(ip: str | None) -> str:
    return blind_index.network_index(ip) or ""


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
