"""Keyed indexes of IP addresses: the one place that says how an address is looked up.

An IP address is stored encrypted (``core.fields.EncryptedIPAddressField``); equality lookups
(lockout by address, sessions from an address, "is this a new network for the account?") go
through these HMACs instead. Both are keyed with the blind-index key (``BLIND_INDEX_KEY``, a
key outside the database and separate from the data keys), each purpose under its own derived
key, so an index in a leaked dump cannot be reversed by hashing all 2^32 IPv4 addresses.

- :func:`ip_index`: the exact address (IPv6 in its compressed form, IPv4-mapped IPv6 as IPv4).
- :func:`network_index`: the coarse network, /24 for IPv4 and /48 for IPv6, for network-level
  rules (new network, spraying from one network, allow-lists by network).

Login monitoring and lockout code should call these, never ``blind_index`` on a raw address,
so that every table indexes an address the same way. See docs/decisions/026-nothing-personal-in-plaintext.md.
"""

from __future__ import annotations

import ipaddress

from django.utils.ipv6 import clean_ipv6_address

from .crypto import blind_index

IP_INDEX_PURPOSE = "ip-address"
NETWORK_INDEX_PURPOSE = "ip-network"
IPV4_NETWORK_PREFIX = 24
IPV6_NETWORK_PREFIX = 48


def normalise_ip(value) -> str | None:
    """The canonical text of an address, or None for an empty or invalid one. This is what an
    encrypted address column stores."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if address.version == 6:
        # Django's form, as GenericIPAddressField wrote it and Postgres prints it: an IPv4-mapped
        # address keeps its dotted tail ("::ffff:198.51.100.7"), which ``compressed`` would not.
        return clean_ipv6_address(text)
    return address.compressed


def _indexed_address(value) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # An IPv4-mapped IPv6 address is the same client as the IPv4 one: both index alike.
    text = normalise_ip(value)
    if text is None:
        return None
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def network_of(value) -> str | None:
    """The address's coarse network in CIDR form ("203.0.113.0/24", "2001:db8:1::/48"), or None."""
    address = _indexed_address(value)
    if address is None:
        return None
    prefix = IPV4_NETWORK_PREFIX if address.version == 4 else IPV6_NETWORK_PREFIX
    return ipaddress.ip_network(f"{address}/{prefix}", strict=False).compressed


def ip_index(value) -> str | None:
    """Keyed blind index of the exact address (None when there is no valid address)."""
    address = _indexed_address(value)
    return None if address is None else blind_index(IP_INDEX_PURPOSE, address.compressed)


def network_index(value) -> str | None:
    """Keyed blind index of the address's /24 (IPv4) or /48 (IPv6) network."""
    network = network_of(value)
    return None if network is None else blind_index(NETWORK_INDEX_PURPOSE, network)
