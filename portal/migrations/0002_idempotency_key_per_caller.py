from django.db import migrations, models


class Migration(migrations.Migration):
    """Idempotency keys belong to the caller (API key or user), not the whole organisation.

    Records written before this have no caller: they match no one and expire within 24 hours.
    """

    dependencies = [
        ("portal", "0001_initial"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="idempotencyrecord",
            name="one_idempotency_key_per_org",
        ),
        migrations.AddField(
            model_name="idempotencyrecord",
            name="caller",
            field=models.CharField(default="", max_length=80),
            preserve_default=False,
        ),
        migrations.AddConstraint(
            model_name="idempotencyrecord",
            constraint=models.UniqueConstraint(
                fields=("organization", "caller", "key"), name="one_idempotency_key_per_caller"
            ),
        ),
    ]
