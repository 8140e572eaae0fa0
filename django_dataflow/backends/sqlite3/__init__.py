"""Pooled SQLite backend: ``ENGINE = "django_dataflow.backends.sqlite3"``."""
