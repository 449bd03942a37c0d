"""Shared components: forms, pagination, confirm button, progress, badges, charts, safe URL tags."""

import re
from decimal import Decimal

import pytest
from django import forms
from django.core.paginator import Paginator
from django.template import Context, Template
from django.template.loader import render_to_string

from core.templatetags.charts import nice_max


class InviteForm(forms.Form):
    email = forms.EmailField(help_text="We send the invitation here.")
    note = forms.CharField(required=False)
    admin = forms.BooleanField(required=False, label="Make admin")


def test_field_links_help_and_errors_to_the_input():
    form = InviteForm(data={"email": "not-an-email"})
    assert not form.is_valid()
    html = render_to_string("components/form.html", {"form": form, "submit_label": "Invite", "cancel_url": "/back/"})
    tag = re.search(r"<input[^>]*name=\"email\"[^>]*>", html).group(0)
    assert 'aria-describedby="id_email_helptext id_email_error"' in tag
    assert 'aria-invalid="true"' in tag and "required" in tag
    assert 'id="id_email_helptext"' in html and 'id="id_email_error"' in html
    assert '<label class="field-label" for="id_email">Email<span class="required" aria-hidden="true">*</span>' in html
    assert 'role="alert"' in html and 'href="/back/"' in html and ">Invite</button>" in html
    note = re.search(r'<label class="field-label" for="id_note">.*?</label>', html).group(0)
    assert "required" not in note


def test_pagination_keeps_the_query_string(rf):
    request = rf.get("/list/?q=abc&status=open&page=2")
    page = Paginator(list(range(100)), 10).get_page(2)
    html = render_to_string("components/pagination.html", {"page_obj": page}, request=request)
    assert 'href="?q=abc&amp;status=open&amp;page=3"' in html
    assert 'aria-current="page"' in html and 'aria-label="Pagination"' in html
    assert "hx-get" not in html
    htmx = render_to_string("components/pagination.html", {"page_obj": page, "hx_target": "t"}, request=request)
    assert 'hx-target="#t"' in htmx and 'hx-push-url="true"' in htmx


def test_pagination_hidden_for_a_single_page(rf):
    page = Paginator([1, 2], 10).get_page(1)
    assert render_to_string("components/pagination.html", {"page_obj": page}, request=rf.get("/")).strip() == ""


def test_confirm_button_is_a_plain_post_form_with_confirmation_data(rf):
    html = Template(
        '{% include "components/confirm_button.html" with url="/keys/1/revoke/" label="Revoke" '
        'message="Revoke this key?" danger=True %}'
    ).render(Context({"csrf_token": "tok"}))
    assert re.search(r'<form method="post" action="/keys/1/revoke/"', html)
    assert 'data-confirm="Revoke this key?"' in html and "data-confirm-danger" in html
    assert 'name="csrfmiddlewaretoken"' in html and 'class="btn btn-danger"' in html


def test_progress_polls_until_done():
    running = render_to_string(
        "components/progress.html", {"value": 40, "max": 80, "label": "Export", "poll_url": "/status/"}
    )
    assert 'hx-get="/status/"' in running and 'hx-trigger="every 2s"' in running
    assert 'aria-live="polite"' in running and "50%" in running
    done = render_to_string("components/progress.html", {"value": 80, "max": 80, "poll_url": "/status/"})
    assert "hx-get" not in done and "100%" in done


def test_badge_tone_follows_the_status():
    assert "badge-success" in render_to_string("components/badge.html", {"status": "active"})
    assert "badge-danger" in render_to_string("components/badge.html", {"status": "failed"})
    html = render_to_string("components/badge.html", {"status": "in_progress"})
    assert "badge-info" in html and "In progress" in html


def test_line_chart_is_accessible_svg_with_a_data_table():
    html = Template("{% load charts %}{% line_chart series title='Assigned seats' x_label='Day' %}").render(
        Context({"series": [("1 Mar", 3), ("2 Mar", 7), ("3 Mar", 5)]})
    )
    assert re.search(r'<svg[^>]*role="img"[^>]*aria-labelledby="chart-assigned-seats-\d+-title chart-', html)
    assert "<title id=" in html and "<desc id=" in html
    assert "3 points from 1 Mar to 3 Mar" in html and "highest 7" in html
    assert "<polyline" in html and html.count("<circle") == 3
    assert "<table" in html and '<th scope="row">2 Mar</th>' in html


def test_chart_points_and_table_escape_names_and_labels_and_show_numbers_as_the_page_would():
    # The dots and the table cells are built in Python (charts._dots_html, _table_body), not by the template
    # engine: what the engine did (escaping, localised numbers) must still happen.
    html = Template("{% load charts %}{% line_chart series title='Seats' x_label='Day' %}").render(Context({
        "series": [{"name": "E5 <b>", "points": [("<i>1 Mar</i>", 3), ("2 Mar", Decimal("7.50"))]},
                   {"name": "E3", "points": [("<i>1 Mar</i>", 1)]}],
    }))
    assert "<b>" not in html and "<i>" not in html
    assert "<title>E5 &lt;b&gt;, &lt;i&gt;1 Mar&lt;/i&gt;: 3</title>" in html
    assert "<title>E5 &lt;b&gt;, 2 Mar: 7.50</title>" in html
    assert ('<tr><th scope="row">&lt;i&gt;1 Mar&lt;/i&gt;</th><td class="num">3</td><td class="num">1</td></tr>'
            in html)
    assert '<tr><th scope="row">2 Mar</th><td class="num">7.50</td><td class="num"></td></tr>' in html


def test_bar_chart_and_empty_chart():
    html = Template("{% load charts %}{% bar_chart points title='Spend' %}").render(
        Context({"points": [("Jan", "10.50"), ("Feb", "0"), ("Mar", "bad")]})
    )
    assert html.count("<rect") == 3 and "10.50" in html
    empty = Template("{% load charts %}{% line_chart points title='Usage' %}").render(Context({"points": []}))
    assert "No data" in empty and "<svg" not in empty


@pytest.mark.parametrize(("value", "expected"), [(0, 1), (7, 10), (12, 20), (230, 250), (0.3, 0.5), (1000, 1000)])
def test_nice_max(value, expected):
    assert nice_max(value) == pytest.approx(expected)


@pytest.mark.django_db
def test_safe_url_tags_never_raise(rf):
    html = Template(
        '{% load portal_ui %}{% safe_url "nope:missing" "portal:home" as a %}[{{ a }}]'
        '{% safe_url "nope:missing" as b %}[{{ b }}]{% org_url "dashboard:overview" as c %}[{{ c }}]'
    ).render(Context({"organization": type("Org", (), {"slug": "acme"})()}))
    assert "[/]" in html and "[]" in html and "[/o/acme/]" in html
