"""Pooled MySQL / MariaDB backend (mysqlclient): ``ENGINE = "django_dataflow.backends.mysql"``."""
