"""Subprocess probe: setup_databases() with TEST["TEMPLATE"] naming a database this process
has used and closed (connection.close(), as at the end of a request). Prints a JSON line:
{"created": bool, "error": str}."""

import json

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.runner import DiscoverRunner  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402


def main():
    # Copy the test database from the real one (PostgreSQL: CREATE DATABASE ... TEMPLATE).
    connection.settings_dict["TEST"]["TEMPLATE"] = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    connection.close()  # Django's own backend ends the session here
    setup_test_environment()
    runner = DiscoverRunner(verbosity=0, interactive=False)
    try:
        old_config = runner.setup_databases()
    except BaseException as error:  # Django exits (SystemExit 2) after printing the error
        print(json.dumps({"created": False, "error": f"{type(error).__name__}: {error}"}))
        return
    runner.teardown_databases(old_config)
    print(json.dumps({"created": True, "error": ""}))


if __name__ == "__main__":
    main()
