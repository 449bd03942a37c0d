"""The login-pattern detectors on synthetic streams, each with the outcome it must give."""

from __future__ import annotations

from security.detection import (
    MFA_FAILURES,
    SPRAY_BLOCK_SECONDS,
    SPRAY_DISTINCT_ACCOUNTS,
    SPRAY_WINDOW_SECONDS,
    Kind,
    Location,
    LoginEvent,
    Monitor,
    Response,
    distance_km,
    response_for,
)
from security.network import LocationTable, in_networks, network_key, network_of, parse_networks

SYDNEY = Location(-33.8688, 151.2093, "AU", "Sydney")
FRANKFURT = Location(50.1109, 8.6821, "DE", "Frankfurt am Main")
NEW_YORK = Location(40.7128, -74.0060, "US", "New York")
NEWARK = Location(40.7357, -74.1724, "US", "Newark")
HOUR = 3600.0


def ok(at, account="alice", device="d1", net="n1", ip="i1", location=None, allowed=None):
    return LoginEvent(at=at, account=account, succeeded=True, device=device, ip_key=ip, network_key=net,
                      location=location, allowed=allowed)


def failed(at, account="alice", ip="i1", factor="password"):
    return LoginEvent(at=at, account=account, succeeded=False, factor=factor, ip_key=ip, network_key="n-" + ip)


def run(stream):
    monitor = Monitor()
    return [sorted(f.kind for f in monitor.feed(event)) for event in stream]


def test_a_first_sign_in_sets_the_baseline_and_a_new_device_or_network_later_is_flagged():
    outcome = run([
        ok(0),                           # first ever: nothing to compare with
        ok(HOUR),                        # same device and network
        ok(2 * HOUR, device="d2"),       # new browser
        ok(3 * HOUR, net="n2", ip="i2"),  # new network, known device
        ok(4 * HOUR, device="d2", net="n2", ip="i2"),  # both known now
        ok(5 * HOUR, account="bob"),     # bob's first: no flag though alice used d1
    ])
    assert outcome == [[], [], [Kind.NEW_DEVICE], [Kind.NEW_NETWORK], [], []]


def test_impossible_travel_needs_both_distance_and_speed():
    outcome = run([
        ok(0, location=NEW_YORK),
        ok(HOUR, location=NEWARK),                   # 15 km: geolocation noise, not travel
        ok(2 * HOUR, location=FRANKFURT),            # 6,200 km in an hour
        ok(2 * HOUR + 20 * HOUR, location=SYDNEY),   # 16,500 km in 20 h: an airliner does it
        ok(23 * HOUR),                               # no location known: no verdict, keeps Sydney
        ok(24 * HOUR, location=FRANKFURT),           # Sydney -> Frankfurt in 2 h
    ])
    assert outcome == [[], [], [Kind.IMPOSSIBLE_TRAVEL], [], [], [Kind.IMPOSSIBLE_TRAVEL]]


def test_impossible_travel_reports_its_evidence():
    monitor = Monitor()
    monitor.feed(ok(0, location=NEW_YORK))
    (finding,) = monitor.feed(ok(HOUR, location=FRANKFURT))
    assert finding.detail["from"] == "US" and finding.detail["to"] == "DE"
    assert 6100 < finding.detail["km"] < 6300 and finding.detail["hours"] == 1.0


def test_password_spraying_from_one_source_is_found_once_and_blocks_a_later_success():
    accounts = [f"user{i}" for i in range(SPRAY_DISTINCT_ACCOUNTS + 2)]
    stream = [failed(i * 10, account=a, ip="botnet") for i, a in enumerate(accounts)]
    stream.append(ok(200, account="user3", ip="botnet"))                 # the guessed password works
    stream.append(ok(200 + SPRAY_BLOCK_SECONDS + 300, account="user3", ip="botnet"))  # block has expired
    outcome = run(stream)
    flagged = [i for i, kinds in enumerate(outcome) if Kind.PASSWORD_SPRAY in kinds]
    assert flagged == [SPRAY_DISTINCT_ACCOUNTS - 1, len(accounts)]
    assert Kind.PASSWORD_SPRAY not in outcome[-1]


def test_failures_spread_beyond_the_window_or_across_sources_are_not_spraying():
    slow = [failed(i * (SPRAY_WINDOW_SECONDS / 2 + 1), account=f"u{i}", ip="slow") for i in range(10)]
    spread = [failed(i, account=f"u{i}", ip=f"ip{i}") for i in range(10)]
    one_account = [failed(i, account="alice", ip="same") for i in range(10)]
    for stream in (slow, spread, one_account):
        assert all(Kind.PASSWORD_SPRAY not in kinds for kinds in run(stream))


def test_repeated_mfa_failures_within_the_window():
    stream = [failed(i * 60, factor="totp") for i in range(MFA_FAILURES)]
    assert run(stream)[-1] == [Kind.MFA_FAILURES]
    spaced = [failed(i * 10 * 60, factor="totp") for i in range(MFA_FAILURES)]  # 20 minutes apart in all
    assert all(kinds == [] for kinds in run(spaced))
    # A second factor that works in between ends the run.
    interrupted = [failed(0, factor="totp"), failed(60, factor="totp"),
                   LoginEvent(at=90, account="alice", succeeded=True, factor="totp"), failed(120, factor="totp")]
    assert all(kinds == [] for kinds in run(interrupted))
    # Password failures are not second-factor failures.
    assert all(kinds == [] for kinds in run([failed(i) for i in range(MFA_FAILURES)]))


def test_outside_the_allow_list_is_flagged_on_any_attempt():
    outcome = run([ok(0, allowed=True), ok(1, allowed=None), ok(2, allowed=False), failed(3)])
    assert outcome == [[], [], [Kind.OUTSIDE_ALLOW_LIST], []]


def test_response_follows_the_highest_risk():
    monitor = Monitor()
    monitor.feed(ok(0, location=NEW_YORK))
    assert response_for([]) == Response.NONE
    assert response_for(monitor.feed(ok(HOUR, device="d9"))) == Response.NOTIFY
    assert response_for(monitor.feed(ok(2 * HOUR, device="d9", location=SYDNEY))) == Response.STEP_UP
    assert response_for(monitor.feed(ok(3 * HOUR, device="new", allowed=False))) == Response.BLOCK


def test_memory_is_bounded_by_the_lru_limits():
    monitor = Monitor(tracked_accounts=100, tracked_sources=50)
    for i in range(5000):
        monitor.feed(ok(i, account=f"a{i}", device=f"d{i}", net=f"n{i}", ip=f"ip{i}"))
        monitor.feed(failed(i, account=f"a{i}", ip=f"ip{i}"))
    assert len(monitor.accounts) == 100 and len(monitor.sources) == 50
    one = Monitor()
    for i in range(500):
        one.feed(ok(i, device=f"d{i}", net=f"n{i}"))
    account = one.accounts["alice"]
    assert len(account.devices) == 20 and len(account.networks) == 20


def test_distance_is_the_great_circle():
    assert round(distance_km(NEW_YORK, FRANKFURT), -2) == 6200
    assert distance_km(SYDNEY, SYDNEY) == 0


def test_network_keys_group_a_24_or_a_48_and_never_show_the_address(settings):
    assert network_of("203.0.113.77") == "203.0.113.0/24"
    assert network_of("2001:db8:0:1::5") == "2001:db8::/48"
    assert network_of("not an ip") == "" and network_key(None) == ""
    assert network_key("203.0.113.1") == network_key("203.0.113.250") != network_key("203.0.114.1")
    assert "203.0.113" not in network_key("203.0.113.1")


def test_the_shipped_table_locates_documentation_ranges_and_nothing_else():
    from security.network import locate

    assert locate("203.0.113.5").city == "New York"
    assert locate("203.0.113.200").city == "Newark"
    assert locate("2001:db8:1::1").country == "JP"
    assert locate("10.0.0.1") is None and locate("") is None and locate("1.1.1") is None


def test_a_db_ip_lite_file_reads_the_same(tmp_path):
    path = tmp_path / "dbip.csv"
    path.write_text("1.0.0.0,1.0.0.255,OC,AU,Queensland,South Brisbane,-27.4748,153.017\n")
    table = LocationTable.from_csv(path)
    assert table.locate("1.0.0.9").city == "South Brisbane" and table.locate("1.0.1.0") is None


def test_allow_lists_parse_cidrs_and_refuse_anything_else():
    assert parse_networks(["203.0.113.7/24", " ", "2001:db8::/32"]) == ["203.0.113.0/24", "2001:db8::/32"]
    assert in_networks("203.0.113.9", ["203.0.113.0/24"]) and not in_networks("198.51.100.1", ["203.0.113.0/24"])
    assert not in_networks("2001:db8::1", ["203.0.113.0/24"]) and not in_networks(None, ["0.0.0.0/0"])
    try:
        parse_networks(["203.0.113.0/24", "office"])
    except ValueError as exc:
        assert "'office'" in str(exc)
    else:
        raise AssertionError("a bad CIDR must be refused")
