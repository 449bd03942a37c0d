"""Directory users: four single-column indexes no query uses, and the listing order as a partial index.

Every query of directory users filters by organisation first, so the single-column indexes on the
organisation (the leading column of the graph id's uniqueness constraint and of two more), on created_at,
last_sign_in_at and removed_at only cost each insert (a first sync writes ten thousand rows). The
listing (API and pages: the organisation's users not removed, by created_at and id) reads a page straight
off the new partial index instead of sorting the organisation's users.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0015_neutral_organization_slugs'),
        ('licensing', '0014_directory_user_indexes_without_pattern_ops'),
    ]

    operations = [
        migrations.AlterField(
            model_name='directoryuser',
            name='created_at',
            field=models.DateTimeField(auto_now_add=True),
        ),
        migrations.AlterField(
            model_name='directoryuser',
            name='last_sign_in_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='directoryuser',
            name='organization',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization'),
        ),
        migrations.AlterField(
            model_name='directoryuser',
            name='removed_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name='directoryuser',
            index=models.Index(condition=models.Q(('removed_at__isnull', True)), fields=['organization', 'created_at', 'id'], name='directory_user_listing_idx'),
        ),
    ]
