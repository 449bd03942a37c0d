"""A directory user's Entra object id becomes encrypted under the organisation's key, with a keyed index.

The sync matches Graph's users to stored rows by this id: it now looks them up through ``graph_id_index``
(HMAC of the canonical id), which the per-organisation uniqueness constraint covers instead of the
plaintext column. The AlterField leaves the plaintext in the column (uuid -> text); encrypt_columns
encrypts it in place and fills the index in batches. Reversible: the reverse writes the plaintext back.
"""

from django.db import migrations, models

import core.fields
from core.migration_ops import encrypt_columns


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0013_staff_grants'),
        ('licensing', '0011_encrypt_onboarding_domain_and_company_name'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='directoryuser',
            name='directory_user_graph_id_unique',
        ),
        migrations.AddField(
            model_name='directoryuser',
            name='graph_id_index',
            field=core.fields.UUIDIndexField(db_index=False, purpose='directory-user-graph-id', source='graph_id'),
        ),
        migrations.AlterField(
            model_name='directoryuser',
            name='graph_id',
            field=core.fields.EncryptedUUIDField(),
        ),
        encrypt_columns("licensing", "DirectoryUser", ["graph_id"]),
        migrations.AddConstraint(
            model_name='directoryuser',
            constraint=models.UniqueConstraint(fields=('organization', 'graph_id_index'), name='directory_user_graph_id_unique'),
        ),
    ]
