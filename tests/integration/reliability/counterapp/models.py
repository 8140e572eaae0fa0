"""Counter and Hit: what every scenario request writes (see ``record_request``)."""

from __future__ import annotations

from django.db import models


class Counter(models.Model):
    name = models.CharField(primary_key=True, max_length=100)
    value = models.BigIntegerField(default=0)

    class Meta:
        app_label = "counterapp"


class Hit(models.Model):
    request_id = models.CharField(primary_key=True, max_length=100)
    counter = models.CharField(max_length=100, db_index=True)

    class Meta:
        app_label = "counterapp"
