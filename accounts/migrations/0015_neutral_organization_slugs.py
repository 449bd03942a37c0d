"""Neutral organisation slugs (decision 041).

Every organisation whose slug was made from its name gets a neutral one (``org-`` and eight random
characters without vowels); the old slug is kept only as a keyed hash (``previous_slug_index``), so its
old links redirect its members and no new slug can ever take it. The portal's own stored links to
the organisation's pages (notifications' ``link_url``) are rewritten to the new slug, or the name would
stay in them.

Left as they are: slugs already neutral, and the demo organisation's fixed ``fabrikam`` (Microsoft's
fictional sample company, not a customer's name; ``accounts.demo`` finds the demo by it).

The reverse removes the column and keeps the neutral slugs: the old ones cannot be recovered from
their hashes, and should not be.
"""

import re
import secrets

from django.db import migrations, models

from core.crypto import blind_index

ALPHABET = "bcdfghjkmnpqrstvwxz23456789"  # as accounts.services.SLUG_ALPHABET, frozen here
NEUTRAL = re.compile(rf"^org-[{ALPHABET}]{{8}}$")
KEEP = {"fabrikam"}  # accounts.demo.DEMO_ORG_SLUG
INDEX_PURPOSE = "organization-slug"  # accounts.models.ORGANIZATION_SLUG_INDEX
NOTIFICATIONS = "licensing_notification"


def _new_slug(taken: set[str], retired: set[str]) -> str:
    while True:
        slug = "org-" + "".join(secrets.choice(ALPHABET) for _ in range(8))
        if slug not in taken and slug not in retired:
            return slug


def neutral_slugs(apps, schema_editor):
    Organization = apps.get_model("accounts", "Organization")
    connection = schema_editor.connection
    rows = list(Organization._base_manager.order_by("pk").values_list("pk", "slug"))
    taken = {slug for _, slug in rows}
    retired = {slug for _, slug in rows if slug not in KEEP and not NEUTRAL.match(slug)}
    # The notifications table belongs to a higher app; on a fresh database it does not exist yet (and
    # holds nothing to rewrite), so it is looked for rather than depended on.
    has_notifications = NOTIFICATIONS in connection.introspection.table_names()
    table = schema_editor.quote_name(NOTIFICATIONS)
    for pk, old in rows:
        if old not in retired:
            continue
        new = _new_slug(taken, retired)
        taken.add(new)
        Organization._base_manager.filter(pk=pk).update(
            slug=new, previous_slug_index=blind_index(INDEX_PURPOSE, old))
        if has_notifications:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {table} SET link_url = REPLACE(link_url, %s, %s) "
                    "WHERE organization_id = %s AND link_url LIKE %s",
                    [f"/o/{old}/", f"/o/{new}/", pk.hex if connection.vendor == "sqlite" else pk,
                     f"%/o/{old}/%"],
                )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0013_staff_grants"),
    ]

    operations = [
        migrations.AddField(
            model_name="organization",
            name="previous_slug_index",
            field=models.CharField(blank=True, editable=False, max_length=64, null=True, unique=True),
        ),
        migrations.RunPython(neutral_slugs, migrations.RunPython.noop, elidable=False),
    ]
