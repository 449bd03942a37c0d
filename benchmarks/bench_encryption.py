"""Encrypted model round trip (create + load + read 5 encrypted fields) against the same model in plaintext."""

from __future__ import annotations

import datetime
import time
from decimal import Decimal

from django.db import transaction

from benchmarks.harness import Context, Result

ROUNDS = 300
REPEATS = 9
VALUES = {
    "note": "Customer asked to move the renewal to the first of the month; call back after the audit.",
    "name": "Ada Lovelace",
    "data": {"street": "12 Analytical Row", "city": "London", "tags": ["vip", "emea"]},
    "day": datetime.date(2024, 2, 29),
    "amount": Decimal("1234.56"),
}


def _round_trips(model, org) -> float:
    """Seconds per create + load + read, inside one transaction that is rolled back."""
    with transaction.atomic():
        start = time.perf_counter()
        for _ in range(ROUNDS):
            created = model.objects.create(organization=org, **VALUES)
            loaded = model.objects.get(pk=created.pk)
            values = (loaded.note, loaded.name, loaded.data, loaded.day, loaded.amount)
            assert values[4] == VALUES["amount"]
        elapsed = time.perf_counter() - start
        transaction.set_rollback(True)
    return elapsed / ROUNDS


def run(ctx: Context) -> list[Result]:
    from accounts.models import Organization
    from benchmarks.benchapp.models import EncryptedRecord, PlainRecord

    org = Organization.objects.create(slug="bench-encryption", legal_name="Bench", country="US")
    _round_trips(PlainRecord, org)
    _round_trips(EncryptedRecord, org)  # warm-up: creates the data key, fills the key cache
    plain, encrypted = [], []
    for _ in range(REPEATS):  # interleaved, so drift affects both sides alike
        plain.append(_round_trips(PlainRecord, org))
        encrypted.append(_round_trips(EncryptedRecord, org))
    # The minimum is the least noisy estimate of the true cost on a shared machine.
    figure, baseline = min(encrypted) * 1e6, min(plain) * 1e6
    ctx.say(f"{ROUNDS} round trips x {REPEATS} repeats; best per round trip: {figure:.0f} us vs {baseline:.0f} us")
    return [
        Result(
            "encrypted model round trip (5 fields)",
            figure,
            baseline,
            "us",
            goal=1.1,
            note="create + get + read 5 fields; baseline: the same model with plain fields",
        )
    ]
