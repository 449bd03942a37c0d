"""Every licensing table scrolls inside its own region instead of widening the page, and every table
and list a screen reader lands on has a name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TEMPLATES = sorted((Path(__file__).resolve().parents[1] / "templates" / "licensing").rglob("*.html"))
TABLE = re.compile(r"<table\b[^>]*>.*?</table>", re.S)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_tables_scroll_in_a_named_region_and_have_a_caption(template):
    text = template.read_text()
    for match in TABLE.finditer(text):
        before = text[:match.start()].rstrip()
        assert before.endswith('tabindex="0">') and 'class="table-scroll"' in before[-200:], (
            f"{template.name}: a <table> outside a table-scroll region")
        caption = re.search(r'<caption id="([^"]+)"', match.group(0))
        assert caption, f"{template.name}: a <table> without a captioned id"
        assert f'aria-labelledby="{caption.group(1)}"' in before[-200:]


def test_the_provisioning_timeline_has_an_accessible_name():
    timeline = next(p for p in TEMPLATES if p.name == "_timeline.html").read_text()
    assert re.search(r'<ol class="timeline"[^>]*aria-label="[^"]+"', timeline)
