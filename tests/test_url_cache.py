"""Remembered URL reversing (core/urlcache.py): the same answers as Django's, and never a stale one."""

from __future__ import annotations

import uuid

import pytest
from django.template import Context, Template
from django.test import override_settings
from django.urls import NoReverseMatch, clear_script_prefix, path, set_script_prefix
from django.urls import reverse as django_reverse

from core import urlcache


def _view(request, **kwargs):  # pragma: no cover - never called, only reversed
    raise AssertionError


urlpatterns = [
    path("first/", _view, name="sample"),
    path("item/<slug:slug>/", _view, name="item"),
    path("uuid/<uuid:pk>/", _view, name="by_uuid"),
]


class OtherUrls:
    urlpatterns = [path("second/", _view, name="sample")]


@pytest.fixture(autouse=True)
def _fresh_cache():
    urlcache.clear()
    yield
    urlcache.clear()


@override_settings(ROOT_URLCONF=__name__)
def test_answers_as_django_does_and_remembers_the_answer():
    key = uuid.uuid4()
    assert urlcache.reverse("sample") == django_reverse("sample") == "/first/"
    assert urlcache.reverse("item", kwargs={"slug": "contoso"}) == "/item/contoso/"
    assert urlcache.reverse("item", args=["fabrikam"]) == "/item/fabrikam/"
    assert urlcache.reverse("by_uuid", kwargs={"pk": key}) == f"/uuid/{key}/"
    assert len(urlcache._reversed) == 4
    assert urlcache.reverse("item", kwargs={"slug": "contoso"}) == "/item/contoso/"
    assert len(urlcache._reversed) == 4


@override_settings(ROOT_URLCONF=__name__)
def test_a_missing_name_raises_every_time():
    for _ in range(2):
        with pytest.raises(NoReverseMatch):
            urlcache.reverse("no-such-name")
    with pytest.raises(NoReverseMatch):
        urlcache.reverse("item", kwargs={"slug": "not a slug"})


def test_a_changed_url_configuration_is_not_answered_from_memory():
    with override_settings(ROOT_URLCONF=__name__):
        assert urlcache.reverse("sample") == "/first/"
    with override_settings(ROOT_URLCONF=OtherUrls):
        assert urlcache.reverse("sample") == "/second/"


@override_settings(ROOT_URLCONF=__name__)
def test_the_script_prefix_is_part_of_the_answer():
    assert urlcache.reverse("sample") == "/first/"
    set_script_prefix("/portal/")
    try:
        assert urlcache.reverse("sample") == "/portal/first/"
    finally:
        clear_script_prefix()
        set_script_prefix("/")
    assert urlcache.reverse("sample") == "/first/"


@override_settings(ROOT_URLCONF=__name__)
def test_an_object_argument_is_reversed_anew_each_time():
    class Named:
        """Equal to itself whatever its text: like a model instance, equal by primary key."""

        def __init__(self, text):
            self.text = text

        def __str__(self):
            return self.text

        def __eq__(self, other):
            return isinstance(other, Named)

        def __hash__(self):
            return 1

    value = Named("before")
    assert urlcache.reverse("item", args=[value]) == "/item/before/"
    value.text = "after"
    assert urlcache.reverse("item", args=[value]) == "/item/after/"
    assert urlcache._reversed == {}


@override_settings(ROOT_URLCONF=__name__)
def test_the_template_tag_renders_as_djangos_does():
    source = (
        "{% url 'sample' %}|{% url 'item' slug %}|{% url 'item' slug=slug %}|"
        "{% url 'missing' as nothing %}[{{ nothing }}]|{% url 'item' 'a-b' as link %}{{ link }}"
    )
    rendered = Template(source).render(Context({"slug": "contoso"}))
    assert rendered == "/first/|/item/contoso/|/item/contoso/|[]|/item/a-b/"
    with pytest.raises(NoReverseMatch):
        Template("{% url 'missing' %}").render(Context({}))
    # It is the project's builtin: the remembered reverse answered.
    assert ("sample", (), (), None, "/", None) in urlcache._reversed


@pytest.mark.django_db
def test_the_portal_pages_links_do_not_change(client):
    """A real page, rendered twice: the second (from memory) is the same as the first."""
    first = client.get("/accounts/login/").content.decode()
    second = client.get("/accounts/login/").content.decode()
    assert 'action="/accounts/login/"' in first
    strip = [line for line in first.splitlines() if "csrf" not in line.lower()]
    assert strip == [line for line in second.splitlines() if "csrf" not in line.lower()]
