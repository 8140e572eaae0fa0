"""Under gevent every greenlet is a ``threading._DummyThread``, which says it is alive for
ever. A connection left checked out by a greenlet that has ended (killed by a timeout in
the middle of its request) must be reclaimed, as one of a thread that ended is, even
while the greenlet's wrapper is still in memory (Django's wrappers are reference
cycles, freed only by a collection).
Run in a subprocess: gevent patches the standard library before anything imports it.
(tests/integration/processes/test_gevent_worker.py runs gunicorn's gevent worker.)"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("gevent")

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    from gevent import monkey

    monkey.patch_all()

    import sys

    import django
    import gevent
    from django.conf import settings

    settings.configure(
        DATABASES={
            "default": {
                "ENGINE": "django_dataflow.backends.sqlite3",
                "NAME": sys.argv[1],
                "POOL": {"pool_size": 1, "pool_max_overflow": 0, "pool_timeout": 1},
            }
        },
        INSTALLED_APPS=["django_dataflow"],
    )
    django.setup()
    from django.db import connections

    kept = []  # the ended greenlets' wrappers, not yet collected

    def one_request(finish):
        wrapper = connections["default"]
        kept.append(wrapper)
        wrapper.close_if_unusable_or_obsolete()  # request_started
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT 1")
        if finish:
            wrapper.close_if_unusable_or_obsolete()  # request_finished: parked

    def run(finish):
        greenlet = gevent.spawn(one_request, finish)
        greenlet.join()
        kept.append(greenlet)  # (distinct greenlets: their ids are not reused)
        if not greenlet.successful():
            raise greenlet.exception

    # A greenlet killed in the middle of its request (a timeout) never gives its
    # connection back; the next greenlet's request must not wait for it for ever.
    run(finish=False)
    try:
        run(finish=True)
    except Exception as error:
        print(type(error).__name__)
    else:
        print("served", kept[0].dataflow_pool.get_stats()["reclaimed_from_dead_threads"])
    """
)


def test_a_connection_left_by_an_ended_greenlet_is_reclaimed_for_the_next_one(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "greenlets.sqlite3")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["served", "1"], result.stdout
