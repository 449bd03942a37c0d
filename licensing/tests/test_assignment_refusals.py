"""What an assignment refusal carries to the page: the words, the shortfall and where to buy it."""

from types import SimpleNamespace

from django.urls import reverse

from licensing.services.assignments import AssignmentRefused, SeatsExhausted, buy_more_url


def test_seats_exhausted_says_how_many_are_missing():
    pool = SimpleNamespace(label="Microsoft 365 E3")
    short = SeatsExhausted(sku=pool, needed=7, available=4)
    assert (short.sku, short.needed, short.available, short.short) == (pool, 7, 4, 3)
    assert str(short) == "Microsoft 365 E3: 7 seat(s) needed, 4 free. Buy 3 more seat(s) to continue."
    oversold = SeatsExhausted(sku=pool, needed=2, available=-1)
    assert (oversold.available, oversold.short) == (0, 2)
    assert SeatsExhausted(sku=pool, needed=2, available=5).short == 0


def test_an_assignment_refusal_carries_its_code_words_and_hint():
    refused = AssignmentRefused("user_removed", "The user was deleted in the tenant.")
    assert (refused.code, refused.message, refused.fix_hint) == (
        "user_removed", "The user was deleted in the tenant.", "")
    assert str(refused) == "The user was deleted in the tenant."


def test_without_a_seat_pool_buying_more_starts_at_the_catalog():
    organization = SimpleNamespace(slug="contoso")
    assert buy_more_url(organization) == reverse("licensing:catalog", kwargs={"org_slug": "contoso"})
    assert buy_more_url(organization).endswith("/catalog/")
