"""The form renderer renders inputs and selects in Python: its output must be byte for byte the templates'."""

from __future__ import annotations

import copy
import datetime
import importlib
from decimal import Decimal
from pathlib import Path

import pytest
from django import forms
from django.apps import apps
from django.forms.renderers import DjangoTemplates
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy

from core.form_renderer import WidgetRenderer

TRICKY = 'a "quoted" <b>&amp; \'single\'</b>'
VALUES = [None, "", "plain", TRICKY, mark_safe("<i>safe</i>"), 0, 12, Decimal("1.50"), True, False,
          datetime.date(2026, 12, 7), ("a", "b"), ["x", "y"]]
ATTRS = [
    {},
    {"id": "id_field", "class": "a b", "required": True, "disabled": False, "maxlength": 30, "data-x": None,
     "placeholder": TRICKY, "aria-describedby": mark_safe("id_field_helptext"), "title": gettext_lazy("Name")},
]
CHOICES = [
    ("", "---------"),
    ("one", "One"),
    ("two", TRICKY),
    ("safe", mark_safe("<b>bold</b>")),
    ("lazy", gettext_lazy("Email")),
    ("Group", [("g1", "In a group"), ("g2", gettext_lazy("Lazy in a group"))]),
    (3, "A number as the value"),
]

DJANGO_WIDGETS = [
    forms.TextInput(), forms.EmailInput(), forms.URLInput(), forms.NumberInput(), forms.PasswordInput(),
    forms.PasswordInput(render_value=True), forms.HiddenInput(), forms.DateInput(), forms.DateTimeInput(),
    forms.TimeInput(), forms.CheckboxInput(), forms.TextInput(attrs={"type": "search"}),
    forms.Select(choices=CHOICES), forms.SelectMultiple(choices=CHOICES), forms.NullBooleanSelect(),
    forms.Select(choices=[]), forms.Select(choices=[("", "")]),
]

# Templates the renderer leaves to Django's engine, rendered through it unchanged.
TEMPLATE_WIDGETS = [forms.Textarea(), forms.RadioSelect(choices=CHOICES), forms.CheckboxSelectMultiple(choices=CHOICES),
                    forms.ClearableFileInput(), forms.SplitDateTimeWidget(), forms.Select(choices=[(1, 2), (3, 4)])]


def both_ways(widget, name, value, attrs):
    """The widget's output through each renderer, or the error it raised (a value the widget itself refuses)."""

    def render(renderer):
        try:
            return widget.render(name, value, attrs=dict(attrs), renderer=renderer)
        except (TypeError, ValueError, AttributeError) as error:
            return type(error)

    return render(WidgetRenderer()), render(DjangoTemplates())


@pytest.mark.parametrize("widget", DJANGO_WIDGETS + TEMPLATE_WIDGETS, ids=lambda w: type(w).__name__)
def test_every_value_and_attribute_renders_as_the_templates_render_it(widget):
    for name in ("field", "a-b_c"):
        for value in [*VALUES, "one", "g2", 3, "3"]:
            for attrs in ATTRS:
                fast, templates = both_ways(widget, name, value, attrs)
                assert fast == templates, (type(widget).__name__, value, attrs)


def project_forms():
    """Every form class defined in the project's own apps (pages, admin and API forms)."""
    project = {config.name.split(".")[0] for config in apps.get_app_configs() if not config.path.count("site-packages")}
    importlib.import_module("portal.urls")
    seen, stack = [], [forms.BaseForm]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            stack.append(sub)
            if sub.__module__.split(".")[0] in project and sub not in seen:
                seen.append(sub)
    return seen


def test_every_field_of_every_project_form_renders_as_the_templates_render_it():
    rendered = 0
    for form_class in project_forms():
        for name, field in form_class.base_fields.items():
            field = copy.deepcopy(field)
            if isinstance(field, forms.ModelChoiceField):
                # Choices from a table need a tenant in scope; the widget renders any list the same way.
                field.widget.choices = [("", "---------"), ("3f1c", TRICKY)]
            choices = [value for value, _ in getattr(field.widget, "choices", [])][:4]
            values = [None, "", TRICKY, field.initial, *choices]
            for value in values:
                attrs = {"id": f"id_{name}", **field.widget_attrs(field.widget)}
                fast, templates = both_ways(field.widget, name, value, attrs)
                assert fast == templates, (form_class, name, value)
                rendered += 1
    assert rendered > 200  # the project's forms were found


def test_inputs_and_selects_skip_the_template_engine_and_other_widgets_use_it(monkeypatch):
    through_templates = []
    original = DjangoTemplates.render

    def counting(self, template_name, context, request=None):
        through_templates.append(template_name)
        return original(self, template_name, context, request)

    monkeypatch.setattr(DjangoTemplates, "render", counting)
    renderer = WidgetRenderer()
    for widget in DJANGO_WIDGETS:
        widget.render("field", "one", attrs={"id": "x"}, renderer=renderer)
    assert through_templates == []
    forms.Textarea().render("field", "text", renderer=renderer)
    forms.Select(choices=[(1, 2)]).render("field", 1, renderer=renderer)  # a label the template would localise
    assert through_templates == ["django/forms/widgets/textarea.html", "django/forms/widgets/select.html"]


def test_the_installed_django_ships_the_templates_the_python_mirrors():
    # Were a Django upgrade to change one, its widgets would quietly take the template's path again.
    assert set(WidgetRenderer()._python_renderers()) == {
        f"django/forms/widgets/{name}.html"
        for name in ("input", "text", "email", "password", "number", "url", "tel", "search", "hidden", "date",
                     "datetime", "time", "color", "checkbox", "select")
    }


def test_a_template_overriding_djangos_takes_the_templates_path(tmp_path):
    widgets = tmp_path / "django" / "forms" / "widgets"
    widgets.mkdir(parents=True)
    (widgets / "input.html").write_text('<input class="ours" name="{{ widget.name }}">')

    class Overridden(WidgetRenderer):
        @property
        def engine(self):
            dirs = [tmp_path, Path(forms.__file__).parent / "templates"]
            return self.backend({"APP_DIRS": True, "DIRS": dirs, "NAME": "overridden", "OPTIONS": {}})

    renderer = Overridden()
    assert forms.TextInput().render("field", "x", renderer=renderer) == '<input class="ours" name="field">'
    assert "django/forms/widgets/input.html" not in renderer._python_renderers()
    assert "django/forms/widgets/select.html" in renderer._python_renderers()
