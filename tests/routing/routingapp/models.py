"""Models of the routing tests, one per kind of place their data lives."""

from django.db import models


class Article(models.Model):
    """The "default" set: written to the primary, read from its replicas."""

    title = models.CharField(max_length=100)


class Comment(models.Model):
    """Same set as Article, so the two may be related."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE)
    text = models.CharField(max_length=100)


class PageView(models.Model):
    """An analytics model: its table exists only in the analytics database."""

    path = models.CharField(max_length=100)


class Event(models.Model):
    """The "events" set: its own primary and replica."""

    kind = models.CharField(max_length=50)
