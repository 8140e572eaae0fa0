"""Models used by the backend tests."""

from django.db import models


class Counter(models.Model):
    name = models.CharField(max_length=50, unique=True)
    value = models.IntegerField(default=0)


class Item(models.Model):
    name = models.CharField(max_length=100)
    active = models.BooleanField(default=True)
