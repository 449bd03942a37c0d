"""Sign-in events move from security to accounts (docs/decisions/009-layers.md): state only, same table."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('security', '0004_move_models_to_lower_floors'),
        ('accounts', '0004_invitation'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='SignInEvent',
                    fields=[
                        ('id', models.BigAutoField(primary_key=True, serialize=False)),
                        ('occurred_at', models.DateTimeField(db_index=True)),
                        ('email_index', models.CharField(blank=True, db_index=True, max_length=64)),
                        ('ip_address', models.GenericIPAddressField(blank=True, null=True)),
                        ('user_agent', models.CharField(blank=True, max_length=300)),
                        ('device_id', models.CharField(blank=True, db_index=True, max_length=64)),
                        ('succeeded', models.BooleanField()),
                        ('factor', models.CharField(choices=[('password', 'Password'), ('totp', 'Authenticator app'), ('recovery', 'Recovery code'), ('webauthn', 'Passkey')], max_length=16)),
                        ('failure_reason', models.CharField(blank=True, choices=[('', 'None'), ('bad_credentials', 'Wrong email or password'), ('locked_out', 'Locked out after too many failures'), ('inactive', 'Account disabled'), ('bad_code', 'Wrong or expired code'), ('replayed_code', 'Code already used'), ('throttled', 'Too many wrong codes')], max_length=32)),
                        ('user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='sign_in_events', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'security_signinevent',
                        'ordering': ['-occurred_at', '-id'],
                        'indexes': [models.Index(fields=['user', '-occurred_at'], name='security_si_user_id_3b5f80_idx')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
