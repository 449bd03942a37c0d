import pytest


@pytest.fixture(autouse=True)
def _mail_in_memory(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


# The Microsoft emulator as a real HTTPS server, shared with licensing's tests (directory-user erasure).
from licensing.tests.conftest import (  # noqa: E402, F401
    _assignment_tallies_agree_after_each_test,
    emulator,
    emulator_server,
    make_client,
    ms,
    sleeps,
)
