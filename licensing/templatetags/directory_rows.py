"""The directory users page's table rows, written out in Python.

The page shows 50 users; as template markup each row was about twenty nodes (variables, filters, conditions and a
loop over the user's licenses), and resolving them was most of the page's rendering (about 8 of 17 ms). The tag
writes the same markup, byte for byte and escaped the same way; ``licensing/tests/test_directory_rows.py`` renders
both and compares them. Every value goes through ``format_html``, which escapes it; the markup is never marked
safe by hand.
"""

from __future__ import annotations

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.timezone import template_localtime

from core.timezones import format_day

register = template.Library()

ROW = ('\n  <tr data-user="{pk}">\n    {select}\n'
       '    <th scope="row"><a href="{url}">{name}</a>{disabled}</th>\n'
       '    <td class="cell-address">{upn}</td>\n'
       '    <td class="cell-address">{mail}</td>\n'
       '    <td>{department}</td>\n'
       '    <td>{location}</td>\n'
       '    <td>{licenses}</td>\n'
       '    <td>{signed_in}</td>\n  </tr>\n  ')
SELECT = ('<td class="select-col"><input type="checkbox" name="user" value="{pk}" id="select-{pk}" '
          'aria-label="Select {name}"></td>')
DISABLED = format_html(' <span class="badge">{}</span>', "Disabled")
NO_LICENSE = format_html('<span class="muted">{}</span>', "None")
NEVER_SIGNED_IN = format_html('<span class="muted">{}</span>', "Never or unknown")


@register.simple_tag
def directory_user_rows(rows, can_manage) -> SafeString:
    """The ``<tr>`` of each :class:`licensing.selectors.directory_search.Row`, with the selection box when
    ``can_manage``. Dates are in the active (organisation's) time zone, as the ``date`` filter would give them."""
    return format_html_join("", "{}", ((_row(row, can_manage),) for row in rows))


def _row(u, can_manage) -> SafeString:
    licenses = format_html_join("", '<span class="badge{}">{}{}</span> ', (
        (" badge-danger" if a.state == "failed" else "", a.sku.label,
         "" if a.state == "assigned" else f" · {a.get_state_display()}")
        for a in u.current_assignments)) or NO_LICENSE
    if u.last_sign_in_at:
        signed_in = format_html('<time datetime="{}">{}</time>', template_localtime(u.last_sign_in_at).isoformat(),
                                format_day(u.last_sign_in_at))
    else:
        signed_in = NEVER_SIGNED_IN
    return format_html(
        ROW, pk=u.pk, url=u.url, name=u.display_name or "(no name)", upn=u.user_principal_name, mail=u.mail or "",
        department=u.department or "", location=u.usage_location or "Missing", licenses=licenses, signed_in=signed_in,
        select=format_html(SELECT, pk=u.pk, name=u.display_name or u.user_principal_name) if can_manage else "",
        disabled="" if u.account_enabled else DISABLED,
    )
