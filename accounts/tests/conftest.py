import pytest


@pytest.fixture(autouse=True)
def _no_lockout_carryover(settings):
    # Axes keeps counters in the database (rolled back per test) and a cache; start clean.
    from django.core.cache import cache

    cache.clear()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
