"""Pooled PostgreSQL backend (psycopg 3): ``ENGINE = "django_dataflow.backends.postgresql"``."""
