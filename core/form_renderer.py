"""The form renderer: Django's, with its commonest widget templates rendered in Python.

A form field's widget is rendered through Django's template engine: ``<input>`` is two templates (the input
and its attributes, a loop with two conditions per attribute), a ``<select>`` three more per option. On the
sign-in page the two inputs are a fifth of the request; on the directory page the filter form's 32 options
are about a sixth of it (docs/performance.md, eighth round).

:class:`WidgetRenderer` renders Django's own ``input.html`` family, ``select.html`` and ``select_option.html``
with the same code the templates run, in Python, and the rest through the templates as before. Its output is
byte for byte the templates' (``tests/test_form_renderer.py`` renders every field of every form of the project
and a matrix of Django's widgets both ways). It takes the templates' path whenever it cannot be sure of that:

- a template of that name that is not Django's own (a project or an app overriding it);
- a widget with a template of its own;
- a value the template would localise or format (an option label or group name that is not text).
"""

from __future__ import annotations

from pathlib import Path

import django.forms
from django.forms.renderers import DjangoTemplates
from django.template import TemplateDoesNotExist
from django.utils.functional import Promise
from django.utils.html import escape
from django.utils.safestring import SafeData

_DJANGO_WIDGETS = Path(django.forms.__file__).parent / "templates" / "django" / "forms" / "widgets"

_INPUT = "django/forms/widgets/input.html"
_SELECT = "django/forms/widgets/select.html"
_OPTION = "django/forms/widgets/select_option.html"
_ATTRS = "django/forms/widgets/attrs.html"
# The templates whose whole text is ``_INCLUDE_INPUT``.
_INCLUDING_INPUT = frozenset(
    f"django/forms/widgets/{name}.html"
    for name in (
        "text", "email", "password", "number", "url", "tel", "search", "hidden", "date", "datetime", "time",
        "color", "checkbox",
    )
)

# The text of Django's templates that the functions below mirror, as Django 5.2 ships them.
_INCLUDE_INPUT = '{% include "django/forms/widgets/input.html" %}'
_ATTRS_TEXT = (
    "{% for name, value in widget.attrs.items %}{% if value is not False %} {{ name }}"
    "{% if value is not True %}=\"{{ value|stringformat:'s' }}\"{% endif %}{% endif %}{% endfor %}"
)
_INPUT_TEXT = (
    '<input type="{{ widget.type }}" name="{{ widget.name }}"{% if widget.value != None %} '
    "value=\"{{ widget.value|stringformat:'s' }}\"{% endif %}{% include \"django/forms/widgets/attrs.html\" %}>"
)
_SELECT_TEXT = """<select name="{{ widget.name }}"{% include "django/forms/widgets/attrs.html" %}>\
{% for group_name, group_choices, group_index in widget.optgroups %}{% if group_name %}
  <optgroup label="{{ group_name }}">{% endif %}{% for option in group_choices %}
  {% include option.template_name with widget=option %}{% endfor %}{% if group_name %}
  </optgroup>{% endif %}{% endfor %}
</select>"""
_OPTION_TEXT = (
    "<option value=\"{{ widget.value|stringformat:'s' }}\"{% include \"django/forms/widgets/attrs.html\" %}>"
    "{{ widget.label }}</option>"
)


class _TemplatesNeeded(Exception):
    """A value the Python path does not render exactly as the template would."""


def _variable(value) -> str:
    """``{{ value }}`` for text: escaped unless already safe. Anything else (a number the template would
    localise, a date it would convert) goes to the template."""
    if isinstance(value, Promise):  # a lazy translation: the template renders its text
        value = str(value)
    if not isinstance(value, str):
        raise _TemplatesNeeded
    return value if isinstance(value, SafeData) else escape(value)


def _stringformat(value) -> str:
    """``{{ value|stringformat:'s' }}``: the filter's ``"%s" % value`` is ``str(value)`` (a tuple it turns into
    text first), left as it is when the value was safe (the filter is ``is_safe``), escaped otherwise."""
    text = str(value)
    return text if isinstance(value, SafeData) else escape(text)


def _attrs(attrs: dict) -> str:
    """attrs.html: `` name`` for True, nothing for False, `` name="value"`` otherwise."""
    parts = []
    for name, value in attrs.items():
        if value is False:
            continue
        parts.append(f" {_variable(name)}" if value is True else f' {_variable(name)}="{_stringformat(value)}"')
    return "".join(parts)


def _input(widget: dict) -> str:
    value = widget["value"]
    shown = f' value="{_stringformat(value)}"' if value != None else ""  # noqa: E711 (the template's `!=`)
    kind, name = _variable(widget["type"]), _variable(widget["name"])
    return f'<input type="{kind}" name="{name}"{shown}{_attrs(widget["attrs"])}>'


def _option(option: dict) -> str:
    # The included template's own trailing newline is part of the select's output.
    value, label = _stringformat(option["value"]), _variable(option["label"])
    return f'<option value="{value}"{_attrs(option["attrs"])}>{label}</option>\n'


def _select(widget: dict) -> str:
    parts = [f'<select name="{_variable(widget["name"])}"{_attrs(widget["attrs"])}>']
    for group_name, group_choices, _index in widget["optgroups"]:
        if group_name:
            parts.append(f'\n  <optgroup label="{_variable(group_name)}">')
        for option in group_choices:
            if option["template_name"] != _OPTION:
                raise _TemplatesNeeded
            parts.append("\n  " + _option(option))
        if group_name:
            parts.append("\n  </optgroup>")
    parts.append("\n</select>")
    return "".join(parts)


class WidgetRenderer(DjangoTemplates):
    """Django's template renderer (``FORM_RENDERER``), with the input and select widgets rendered in Python
    when Django's own templates are the ones in use."""

    def __init__(self):
        super().__init__()
        self._python = None

    def _python_renderers(self) -> dict:
        """Template name → its Python rendering, for each name this engine resolves to Django's own file with
        the text the Python mirrors (a later Django that changes a template takes the template's path)."""
        if self._python is None:
            def is_django_own(name: str, text: str) -> bool:
                try:
                    origin = Path(self.get_template(name).origin.name)
                except TemplateDoesNotExist:
                    return False
                return origin == _DJANGO_WIDGETS / Path(name).name and origin.read_text().strip() == text

            python = {}
            if is_django_own(_ATTRS, _ATTRS_TEXT):
                if is_django_own(_INPUT, _INPUT_TEXT):
                    python[_INPUT] = _input
                    python.update({name: _input for name in _INCLUDING_INPUT if is_django_own(name, _INCLUDE_INPUT)})
                if is_django_own(_SELECT, _SELECT_TEXT) and is_django_own(_OPTION, _OPTION_TEXT):
                    python[_SELECT] = _select
            self._python = python
        return self._python

    def render(self, template_name, context, request=None):
        render = self._python_renderers().get(template_name)
        widget = context.get("widget") if render is not None else None
        if widget is not None and widget.get("template_name") == template_name:
            try:
                return render(widget)
            except _TemplatesNeeded:
                pass
        return super().render(template_name, context, request=request)
