"""The ground floor takes over the tables of the key ring, audit chain, disclosure log, field locks and
idempotency records (docs/decisions/009-layers.md). State only: the tables keep their names and rows.
Content types follow the models, so staff permissions granted on them survive the move.
"""

import core.fields
import django.core.validators
import django.db.models.deletion
import django.db.models.manager
import django.utils.timezone
import uuid
from django.conf import settings
from django.db import migrations, models


MOVED = {
    ("security", "datakey"): "core",
    ("security", "auditevent"): "core",
    ("security", "auditchainhead"): "core",
    ("security", "signinevent"): "accounts",
    ("privacy", "disclosure"): "core",
    ("privacy", "fieldlock"): "core",
    ("portal", "idempotencyrecord"): "core",
}


def move_content_types(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for (old_label, model), new_label in MOVED.items():
        if ContentType.objects.filter(app_label=new_label, model=model).exists():
            continue
        ContentType.objects.filter(app_label=old_label, model=model).update(app_label=new_label)


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('security', '0004_move_models_to_lower_floors'),
        ('privacy', '0003_move_models_to_lower_floors'),
        ('portal', '0003_move_models_to_lower_floors'),
        ('accounts', '0005_signinevent'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='AuditChainHead',
                    fields=[
                        ('id', models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                        ('sequence', models.BigIntegerField(default=0)),
                        ('hash', models.CharField(default='0000000000000000000000000000000000000000000000000000000000000000', max_length=64)),
                        ('signature', models.CharField(blank=True, max_length=64)),
                    ],
                    options={
                        'db_table': 'security_auditchainhead',
                    },
                ),
                migrations.CreateModel(
                    name='DataKey',
                    fields=[
                        ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ('scope_kind', models.CharField(max_length=16)),
                        ('scope_id', models.CharField(max_length=64)),
                        ('status', models.CharField(choices=[('active', 'Active'), ('retired', 'Retired (decrypt only)'), ('destroyed', 'Destroyed (crypto-shredded)')], default='active', max_length=16)),
                        ('master_kid', models.CharField(max_length=64)),
                        ('wrapped_key', models.BinaryField(null=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('retired_at', models.DateTimeField(blank=True, null=True)),
                    ],
                    options={
                        'db_table': 'security_datakey',
                        'indexes': [models.Index(fields=['scope_kind', 'scope_id'], name='security_da_scope_k_b8cd5a_idx')],
                        'constraints': [models.UniqueConstraint(condition=models.Q(('status', 'active')), fields=('scope_kind', 'scope_id'), name='one_active_data_key_per_scope')],
                    },
                ),
                migrations.CreateModel(
                    name='AuditEvent',
                    fields=[
                        ('id', models.BigAutoField(primary_key=True, serialize=False)),
                        ('sequence', models.BigIntegerField(unique=True)),
                        ('occurred_at', models.DateTimeField(db_index=True)),
                        ('actor_type', models.CharField(choices=[('user', 'User'), ('staff', 'Staff'), ('api_key', 'API key'), ('system', 'System')], max_length=16)),
                        ('actor_id', models.CharField(blank=True, max_length=64)),
                        ('action', models.CharField(db_index=True, max_length=100)),
                        ('target_type', models.CharField(blank=True, max_length=100)),
                        ('target_id', models.CharField(blank=True, max_length=64)),
                        ('ip_address', models.GenericIPAddressField(blank=True, null=True)),
                        ('request_id', models.CharField(blank=True, max_length=64)),
                        ('metadata', models.JSONField(blank=True, default=dict)),
                        ('previous_hash', models.CharField(max_length=64)),
                        ('hash', models.CharField(max_length=64)),
                        ('organization', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'db_table': 'security_auditevent',
                        'ordering': ['-sequence'],
                        'base_manager_name': 'unscoped_objects',
                        'indexes': [models.Index(fields=['organization', '-occurred_at'], name='security_au_organiz_f54fd8_idx')],
                    },
                    managers=[
                        ('objects', django.db.models.manager.Manager()),
                        ('unscoped_objects', django.db.models.manager.Manager()),
                    ],
                ),
                migrations.CreateModel(
                    name='Disclosure',
                    fields=[
                        ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('recipient', models.CharField(choices=[('microsoft', 'Microsoft'), ('distributor', 'Distributor'), ('regulator', 'Regulator')], max_length=16)),
                        ('categories', models.JSONField(default=list)),
                        ('purpose', models.CharField(choices=[('provisioning', "Provisioning the customer's Microsoft tenant and subscriptions"), ('license_management', 'Managing users and licence assignments'), ('billing', 'Billing and reconciliation'), ('security', 'Security monitoring and fraud response'), ('legal_obligation', 'Complying with a legal obligation')], max_length=32)),
                        ('operation', models.CharField(max_length=120)),
                        ('subject_count', models.PositiveIntegerField(default=1)),
                        ('request_id', models.CharField(blank=True, max_length=64)),
                        ('occurred_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                        ('organization', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'db_table': 'privacy_disclosure',
                        'ordering': ['-occurred_at'],
                        'constraints': [models.UniqueConstraint(condition=models.Q(('request_id', ''), _negated=True), fields=('recipient', 'operation', 'request_id'), name='privacy_disclosure_once_per_request')],
                    },
                ),
                migrations.CreateModel(
                    name='FieldLock',
                    fields=[
                        ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('model_label', models.CharField(max_length=100)),
                        ('object_id', models.CharField(max_length=64)),
                        ('field_name', models.CharField(max_length=64)),
                        ('reason', core.fields.EncryptedTextField(blank=True, default='', validators=[django.core.validators.MaxLengthValidator(300)])),
                        ('locked_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'db_table': 'privacy_fieldlock',
                        'indexes': [models.Index(fields=['organization', 'model_label', 'object_id'], name='privacy_field_lock_idx')],
                        'constraints': [models.UniqueConstraint(fields=('organization', 'model_label', 'object_id', 'field_name'), name='privacy_field_lock_once')],
                    },
                    managers=[
                        ('objects', django.db.models.manager.Manager()),
                        ('unscoped_objects', django.db.models.manager.Manager()),
                    ],
                ),
                migrations.CreateModel(
                    name='IdempotencyRecord',
                    fields=[
                        ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('caller', models.CharField(max_length=80)),
                        ('key', models.CharField(max_length=255)),
                        ('fingerprint', models.CharField(max_length=64)),
                        ('status_code', models.PositiveSmallIntegerField(blank=True, null=True)),
                        ('response_body', core.fields.EncryptedJSONField(blank=True, null=True)),
                        ('completed_at', models.DateTimeField(blank=True, null=True)),
                        ('expires_at', models.DateTimeField(db_index=True)),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.organization')),
                    ],
                    options={
                        'db_table': 'portal_idempotencyrecord',
                        'constraints': [models.UniqueConstraint(fields=('organization', 'caller', 'key'), name='one_idempotency_key_per_caller')],
                    },
                    managers=[
                        ('objects', django.db.models.manager.Manager()),
                        ('unscoped_objects', django.db.models.manager.Manager()),
                    ],
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(move_content_types, migrations.RunPython.noop),
    ]
