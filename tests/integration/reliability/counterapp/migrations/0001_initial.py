from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies: list = []

    operations = [
        migrations.CreateModel(
            name="Counter",
            fields=[
                ("name", models.CharField(max_length=100, primary_key=True, serialize=False)),
                ("value", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.CreateModel(
            name="Hit",
            fields=[
                (
                    "request_id",
                    models.CharField(max_length=100, primary_key=True, serialize=False),
                ),
                ("counter", models.CharField(db_index=True, max_length=100)),
            ],
        ),
    ]
