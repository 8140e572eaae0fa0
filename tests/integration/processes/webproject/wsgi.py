import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.integration.processes.webproject.settings")

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()

if os.environ.get("PROCS_PRELOAD_QUERY"):
    # An application that reads the database while it loads (gunicorn --preload).
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
