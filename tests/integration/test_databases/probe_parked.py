"""Subprocess probe: what a connection parked *before* Django's test databases were set up
reaches afterwards. Prints one JSON line: the database each query reached.

    python -m tests.integration.test_databases.probe_parked thread|mirror

thread: a worker thread serves a "request" (close_old_connections() around a query) before
        setup_databases() and another one after it.
mirror: the main thread queries the TEST["MIRROR"] alias in a "request" before
        setup_databases() and again after it.
"""

import json
import sys
import threading

import django

django.setup()

from django.db import close_old_connections, connections  # noqa: E402
from django.test.runner import DiscoverRunner  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402


def current_database(alias):
    conn = connections[alias]
    with conn.cursor() as cursor:
        if conn.vendor == "postgresql":
            cursor.execute("SELECT current_database()")
            return cursor.fetchone()[0]
        if conn.vendor == "mysql":
            cursor.execute("SELECT DATABASE()")
            return cursor.fetchone()[0]
        cursor.execute("PRAGMA database_list")
        return cursor.fetchall()[0][2]


def request(alias):
    close_old_connections()  # request_started
    try:
        return current_database(alias)
    finally:
        close_old_connections()  # request_finished


def main(mode):
    seen = []
    go, first = threading.Event(), threading.Event()

    def worker():
        seen.append(request("default"))
        first.set()
        go.wait()
        seen.append(request("default"))
        connections.close_all()

    if mode == "thread":
        thread = threading.Thread(target=worker)
        thread.start()
        first.wait()
    else:
        seen.append(request("replica"))
    setup_test_environment()
    runner = DiscoverRunner(verbosity=0, interactive=False)
    old_config = runner.setup_databases()
    expected = current_database("default")
    try:
        if mode == "thread":
            go.set()
            thread.join()
        else:
            seen.append(request("replica"))
    finally:
        connections.close_all()
        runner.teardown_databases(old_config)
    print(json.dumps({"expected": expected, "seen": seen}))


if __name__ == "__main__":
    main(sys.argv[1])
