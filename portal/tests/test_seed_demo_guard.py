import pytest
from django.core.management import CommandError, call_command

from accounts.demo import DEMO_ORG_SLUG
from accounts.models import Organization

pytestmark = pytest.mark.django_db


def test_seed_demo_refuses_with_debug_off(settings):
    settings.DEBUG = False
    settings.TESTING = False
    with pytest.raises(CommandError, match="credentials are public"):
        call_command("seed_demo", accounts_only=True)
    assert not Organization.objects.filter(slug=DEMO_ORG_SLUG).exists()


def test_seed_demo_accounts_only_is_idempotent(settings):
    settings.DEBUG = True
    call_command("seed_demo", accounts_only=True)
    call_command("seed_demo", accounts_only=True)
    assert Organization.objects.filter(slug=DEMO_ORG_SLUG).count() == 1
