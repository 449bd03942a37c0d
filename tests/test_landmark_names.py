"""A table's scrollable region is a landmark: inside a named section it must not carry the section's name,
or a screen reader's landmark list shows the same name twice (axe-core: landmark-unique). The browser
suite's axe-core gate sees the pages the tests reach; this looks at every template, reached or not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = sorted(p for p in ROOT.glob("*/templates/**/*.html") if ".venv" not in p.parts)
SECTION = re.compile(r'<section\b[^>]*\baria-labelledby="([^"]+)"[^>]*>(.*?)</section>', re.S)
REGION = re.compile(r'<[a-z]+\b[^>]*\brole="region"([^>]*)>')


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html)).strip()


def _named(body: str, element_id: str) -> str | None:
    match = re.search(rf'\bid="{re.escape(element_id)}"[^>]*>(.*?)</', body, re.S)
    return _text(match.group(1)) if match else None


def region_names_repeating_their_section(template: str) -> list[str]:
    repeats = []
    for heading_id, body in SECTION.findall(template):
        section_name = _named(body, heading_id)
        for attributes in REGION.findall(body):
            label = re.search(r'\baria-label="([^"]+)"', attributes)
            labelled_by = re.search(r'\baria-labelledby="([^"]+)"', attributes)
            name = label.group(1) if label else _named(body, labelled_by.group(1)) if labelled_by else None
            if name is not None and name == section_name:
                repeats.append(name)
    return repeats


def test_the_check_finds_a_region_named_like_its_section():
    template = """<section aria-labelledby="h"><h2 id="h">Offers</h2>
        <div class="table-scroll" role="region" aria-labelledby="c" tabindex="0"><table>
        <caption id="c" class="visually-hidden">Offers</caption></table></div></section>
        <section aria-labelledby="k"><h2 id="k">Keys</h2><div role="region" aria-label="Keys"></div></section>
        <section aria-labelledby="x"><h2 id="x">Batches</h2><div role="region" aria-label="By date"></div></section>"""
    assert region_names_repeating_their_section(template) == ["Offers", "Keys"]


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_region_is_named_like_the_section_around_it(path):
    assert region_names_repeating_their_section(path.read_text()) == []
