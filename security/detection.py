"""Login-pattern detectors: pure functions over a stream of sign-in events.

Nothing here touches the database or Django. The sign-in flow (``security/monitoring.py``) turns a
recorded ``SignInEvent`` into a :class:`LoginEvent` with one helper, replays the account's and the
source's recent history through a fresh :class:`Monitor`, and acts on the findings for the new event.
The benchmark and the unit tests feed the same :class:`Monitor` synthetic streams.

Events carry keys, never raw addresses: ``ip_key`` and ``network_key`` are keyed indexes of the IP
and of its /24 (IPv4) or /48 (IPv6) network (``security/network.py``), so the detectors work the same
once the stored addresses are encrypted.

Memory is bounded whatever the length of the stream: per-account and per-source state lives in
LRU maps of a fixed size, and each entry keeps at most a fixed number of devices, networks and
timestamps. Events must arrive in time order (they do: the log is append-only).
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from enum import IntEnum

# -- thresholds (why each number is what it is: docs/decisions/022-login-monitoring-and-fraud.md) --
KNOWN_DEVICES_PER_ACCOUNT = 20  # a person rarely uses more browsers than this in 400 days
KNOWN_NETWORKS_PER_ACCOUNT = 20
TRAVEL_MAX_KMH = 1000.0  # a little above an airliner's cruising speed
TRAVEL_MIN_KM = 500.0  # IP geolocation is city-level at best: shorter hops are noise
SPRAY_WINDOW_SECONDS = 15 * 60
SPRAY_DISTINCT_ACCOUNTS = 5  # failures against this many accounts from one source within the window
SPRAY_BLOCK_SECONDS = 60 * 60  # how long a spraying source stays blocked
MFA_WINDOW_SECONDS = 15 * 60
MFA_FAILURES = 3  # wrong second factors in a row, in the window: the password is in someone else's hands
TRACKED_ACCOUNTS = 50_000
TRACKED_SOURCES = 50_000

PASSWORD = "password"


class Risk(IntEnum):
    NONE = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3


class Kind:
    NEW_DEVICE = "new_device"
    NEW_NETWORK = "new_network"
    IMPOSSIBLE_TRAVEL = "impossible_travel"
    PASSWORD_SPRAY = "password_spray"
    MFA_FAILURES = "mfa_failures"
    OUTSIDE_ALLOW_LIST = "outside_allow_list"


RISK = {
    Kind.NEW_DEVICE: Risk.LOW,
    Kind.NEW_NETWORK: Risk.LOW,
    Kind.IMPOSSIBLE_TRAVEL: Risk.MEDIUM,
    Kind.PASSWORD_SPRAY: Risk.HIGH,
    Kind.MFA_FAILURES: Risk.HIGH,
    Kind.OUTSIDE_ALLOW_LIST: Risk.HIGH,
}


class Response:
    """What the sign-in flow does, by the highest risk found."""

    NONE = "none"
    NOTIFY = "notify"  # "was this you?" email
    STEP_UP = "step_up"  # a fresh second factor on the next request, in every session of the account
    BLOCK = "block"  # refuse the sign-in, alert security staff, tell the person


RESPONSE_BY_RISK = {Risk.NONE: Response.NONE, Risk.LOW: Response.NOTIFY, Risk.MEDIUM: Response.STEP_UP,
                    Risk.HIGH: Response.BLOCK}


@dataclass(frozen=True, slots=True)
class Location:
    latitude: float
    longitude: float
    country: str = ""
    city: str = ""


@dataclass(frozen=True, slots=True)
class LoginEvent:
    """One sign-in attempt, as the detectors see it.

    ``account`` is the user's id, or the attempted email's blind index when no such user exists.
    ``allowed`` is None when none of the account's organisations restricts sign-in networks.
    """

    at: float  # seconds since the epoch
    account: str
    succeeded: bool
    factor: str = PASSWORD
    device: str = ""
    ip_key: str = ""
    network_key: str = ""
    location: Location | None = None
    allowed: bool | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    risk: Risk
    detail: dict = field(default_factory=dict)


def response_for(findings) -> str:
    risk = max((f.risk for f in findings), default=Risk.NONE)
    return RESPONSE_BY_RISK[risk]


def distance_km(a: Location, b: Location) -> float:
    """Great-circle distance (haversine, mean Earth radius)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.latitude, a.longitude, b.latitude, b.longitude))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


class _LRU(OrderedDict):
    """A dict that forgets its least recently used entry beyond ``limit``."""

    def __init__(self, limit: int, factory):
        super().__init__()
        self.limit = limit
        self.factory = factory

    def get_or_create(self, key):
        value = self.get(key)
        if value is None:
            value = self[key] = self.factory()
            if len(self) > self.limit:
                self.popitem(last=False)
        else:
            self.move_to_end(key)
        return value


class _Account:
    __slots__ = ("devices", "last_at", "last_location", "mfa_failures", "networks")

    def __init__(self):
        self.devices: OrderedDict[str, None] = OrderedDict()
        self.networks: OrderedDict[str, None] = OrderedDict()
        self.last_at: float | None = None
        self.last_location: Location | None = None
        self.mfa_failures: deque[float] = deque(maxlen=MFA_FAILURES)


class _Source:
    __slots__ = ("blocked_until", "failures")

    def __init__(self):
        # (time, account) of recent failures; at most one entry per account is needed to count them.
        self.failures: OrderedDict[str, float] = OrderedDict()
        self.blocked_until = 0.0


def _remember(known: OrderedDict, key: str, limit: int) -> bool:
    """Record ``key`` as known; True if it was already known."""
    if key in known:
        known.move_to_end(key)
        return True
    known[key] = None
    if len(known) > limit:
        known.popitem(last=False)
    return False


class Monitor:
    """Every detector over one stream. ``feed`` returns the findings for that event."""

    def __init__(self, *, tracked_accounts: int = TRACKED_ACCOUNTS, tracked_sources: int = TRACKED_SOURCES):
        self.accounts = _LRU(tracked_accounts, _Account)
        self.sources = _LRU(tracked_sources, _Source)

    def feed(self, event: LoginEvent) -> list[Finding]:
        findings: list[Finding] = []
        if event.allowed is False:
            findings.append(Finding(Kind.OUTSIDE_ALLOW_LIST, Risk.HIGH))
        password = event.factor == PASSWORD
        if event.succeeded:
            if event.ip_key:
                # Only a source that failed before has state; a lookup without creating keeps the hot path cheap.
                source = self.sources.get(event.ip_key)
                if source is not None and source.blocked_until > event.at:
                    findings.append(Finding(Kind.PASSWORD_SPRAY, Risk.HIGH, {"blocked_source": True}))
            if password:
                account = self.accounts.get_or_create(event.account)
                self._familiarity(event, account, findings)
                self._travel(event, account, findings)
            else:
                # A second factor that worked ends a run of wrong ones (as a good password ends axes' count).
                account = self.accounts.get(event.account)
                if account is not None:
                    account.mfa_failures.clear()
        elif password:
            if event.ip_key:
                self._spraying(event, findings)
        else:
            self._mfa_failures(event, self.accounts.get_or_create(event.account), findings)
        return findings

    # -- detectors --------------------------------------------------------------------------------
    @staticmethod
    def _familiarity(event: LoginEvent, account: _Account, findings: list[Finding]) -> None:
        """New device or network for an account that has signed in before (the first sign-in sets the baseline)."""
        seen_before = account.last_at is not None
        if event.device and not _remember(account.devices, event.device, KNOWN_DEVICES_PER_ACCOUNT) and seen_before:
            findings.append(Finding(Kind.NEW_DEVICE, Risk.LOW))
        if (event.network_key and not _remember(account.networks, event.network_key, KNOWN_NETWORKS_PER_ACCOUNT)
                and seen_before):
            findings.append(Finding(Kind.NEW_NETWORK, Risk.LOW))

    @staticmethod
    def _travel(event: LoginEvent, account: _Account, findings: list[Finding]) -> None:
        """Two successive successful sign-ins further apart than anyone can travel in the time between."""
        previous, previous_at = account.last_location, account.last_at
        account.last_at = event.at
        if event.location is None:
            return
        account.last_location = event.location
        if previous is None or previous_at is None:
            return
        km = distance_km(previous, event.location)
        if km < TRAVEL_MIN_KM:
            return
        hours = max(event.at - previous_at, 1.0) / 3600.0
        speed = km / hours
        if speed > TRAVEL_MAX_KMH:
            findings.append(Finding(Kind.IMPOSSIBLE_TRAVEL, Risk.MEDIUM, {
                "km": round(km), "hours": round(hours, 2), "kmh": round(speed),
                "from": previous.country, "to": event.location.country,
            }))

    def _spraying(self, event: LoginEvent, findings: list[Finding]) -> None:
        """Failed passwords against many accounts from one source. The source then stays blocked for a
        while (checked in ``feed``), so a password that finally works from it is refused too."""
        source = self.sources.get_or_create(event.ip_key)
        failures = source.failures
        failures[event.account] = event.at
        failures.move_to_end(event.account)
        horizon = event.at - SPRAY_WINDOW_SECONDS
        while failures:
            oldest = next(iter(failures))
            if failures[oldest] >= horizon:
                break
            del failures[oldest]
        if len(failures) >= SPRAY_DISTINCT_ACCOUNTS:
            if source.blocked_until <= event.at:
                findings.append(Finding(Kind.PASSWORD_SPRAY, Risk.HIGH, {"accounts": len(failures)}))
            source.blocked_until = event.at + SPRAY_BLOCK_SECONDS
            # Bounded: the window never holds more accounts than it takes to decide.
            while len(failures) > SPRAY_DISTINCT_ACCOUNTS:
                failures.popitem(last=False)

    @staticmethod
    def _mfa_failures(event: LoginEvent, account: _Account, findings: list[Finding]) -> None:
        failures = account.mfa_failures
        failures.append(event.at)
        if len(failures) == MFA_FAILURES and failures[0] >= event.at - MFA_WINDOW_SECONDS:
            findings.append(Finding(Kind.MFA_FAILURES, Risk.HIGH, {"failures": MFA_FAILURES}))
            failures.clear()  # the next alert needs a fresh run of failures
