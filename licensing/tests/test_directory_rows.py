"""The users page's rows written by ``{% directory_user_rows %}`` are the markup the template loop wrote, byte for byte:
the same escaping, defaults, badges and dates in the organisation's time zone."""

from __future__ import annotations

import uuid
import zoneinfo
from datetime import UTC, datetime

import pytest
from django.template import engines
from django.utils import timezone

from licensing.models import LicenseAssignment, TenantSku
from licensing.selectors.directory_search import Row

# The loop the tag replaced (licensing/directory/_users_results.html before the fifth performance round).
TEMPLATE_LOOP = """{% load portal_ui %}{% for u in rows %}
  <tr data-user="{{ u.pk }}">
    {% if can_manage %}<td class="select-col"><input type="checkbox" name="user" value="{{ u.pk }}" id="select-{{ u.pk }}" aria-label="Select {{ u.display_name|default:u.user_principal_name }}"></td>{% endif %}
    <th scope="row"><a href="{{ u.url }}">{{ u.display_name|default:"(no name)" }}</a>{% if not u.account_enabled %} <span class="badge">Disabled</span>{% endif %}</th>
    <td class="cell-address">{{ u.user_principal_name }}</td>
    <td class="cell-address">{{ u.mail|default:"" }}</td>
    <td>{{ u.department|default:"" }}</td>
    <td>{{ u.usage_location|default:"Missing" }}</td>
    <td>{% for a in u.current_assignments %}<span class="badge{% if a.state == 'failed' %} badge-danger{% endif %}">{{ a.sku.label }}{% if a.state != 'assigned' %} · {{ a.get_state_display }}{% endif %}</span> {% empty %}<span class="muted">None</span>{% endfor %}</td>
    <td>{% if u.last_sign_in_at %}<time datetime="{{ u.last_sign_in_at|date:'c' }}">{{ u.last_sign_in_at|day }}</time>{% else %}<span class="muted">Never or unknown</span>{% endif %}</td>
  </tr>
  {% endfor %}"""  # noqa: E501

TAG = "{% load directory_rows %}{% directory_user_rows rows can_manage %}"


def license(state: str, *, name: str = "", part: str = "SPE_E3") -> LicenseAssignment:
    sku = TenantSku(display_name=name, sku_part_number=part, sku_id=uuid.uuid4())
    return LicenseAssignment(state=state, sku=sku)


def rows() -> list[Row]:
    State = LicenseAssignment.State
    return [
        Row(uuid.uuid4(), "Ada <Lovelace> & \"co\"", "ada@fabrikam.example", "ada's@fabrikam.example", "R&D", "GB",
            True, datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
            [license(State.ASSIGNED, name="Microsoft 365 E3"), license(State.FAILED, name="<Visio>"),
             license(State.PENDING), license(State.HANDING_OVER, part="")], "/o/fabrikam/licenses/users/1/"),
        Row(uuid.uuid4(), "", "no.name@fabrikam.example", "", "", "", False, None, [], "/o/x/?a=1&b=<2>"),
        Row(uuid.uuid4(), None, "nulls@fabrikam.example", None, None, None, True,
            datetime(2026, 12, 31, 23, 59, 59, 123456, tzinfo=UTC), [license(State.REMOVING, name="Ünïcode ✓")], ""),
    ]


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata", "Pacific/Kiritimati"])
@pytest.mark.parametrize("can_manage", [True, False])
def test_the_tag_writes_what_the_template_loop_wrote(zone, can_manage):
    engine = engines["django"]
    context = {"rows": rows(), "can_manage": can_manage}
    with timezone.override(zoneinfo.ZoneInfo(zone)):
        expected = engine.from_string(TEMPLATE_LOOP).render(context)
        written = engine.from_string(TAG).render(context)
    assert written == expected
    assert "&lt;Lovelace&gt; &amp; &quot;co&quot;" in written and "<Visio>" not in written


def test_no_rows_write_nothing():
    assert engines["django"].from_string(TAG).render({"rows": [], "can_manage": True}) == ""
