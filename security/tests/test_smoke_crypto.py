import pytest

from accounts.models import Organization, User


@pytest.mark.django_db
def test_user_round_trip_and_lookup_by_email():
    user = User.objects.create_user("Ada@Example.com", "correct horse battery", full_name="Ada Lovelace")
    loaded = User.objects.get(pk=user.pk)
    assert loaded.email == "Ada@example.com"
    assert loaded.full_name == "Ada Lovelace"
    assert User.objects.get_by_email("ada@example.com").pk == user.pk
    loaded.job_title = "CTO"
    loaded.save()
    again = User.objects.get(pk=user.pk)
    assert (again.email, again.job_title) == ("Ada@example.com", "CTO")


@pytest.mark.django_db
def test_org_encrypted_json():
    org = Organization.objects.create(
        slug="acme", legal_name="Acme", country="US", tax_id="US123", billing_address={"city": "Paris"}
    )
    loaded = Organization.objects.get(pk=org.pk)
    assert loaded.billing_address == {"city": "Paris"}
    assert loaded.tax_id == "US123"


@pytest.mark.django_db
def test_changing_an_encrypted_email_moves_its_blind_index():
    user = User.objects.create_user("old@example.com", "correct horse battery")
    loaded = User.objects.get(pk=user.pk)
    loaded.email = "new@example.com"
    loaded.save()
    assert User.objects.get_by_email("new@example.com").pk == user.pk
    assert User.objects.get_by_email("old@example.com") is None
    untouched = User.objects.get(pk=user.pk)
    untouched.job_title = "CFO"
    untouched.save()
    assert User.objects.get_by_email("new@example.com").pk == user.pk
