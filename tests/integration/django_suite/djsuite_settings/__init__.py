"""Settings modules handed to Django's ``tests/runtests.py`` by
``tests/integration/django_suite/run.py``.

They live in their own top-level package (``djsuite_settings``) because runtests.py puts
Django's test directory first on ``sys.path``, where names such as ``backends`` are taken.
Everything variable comes from ``DJSUITE_*`` environment variables set by run.py.
"""
