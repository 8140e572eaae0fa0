"""A counter bumped whenever a database settings entry may have changed in place.

Why it exists: a connection parked at the end of a request is taken back by the thread's
next read of ``wrapper.connection``, without going through ``connect()`` and its check of
the settings entry (which costs a dictionary comparison, too much for every request).
Test-database setup changes an entry behind the wrappers' backs: ``create_test_db()``
writes the test database's ``NAME`` into the dict every thread's wrapper shares,
``set_as_test_mirror()`` swaps a mirror's dict, the parallel runner's workers switch to
their clones, and ``override_settings`` may change anything. Each bumps this counter, and
so does every ``connect()`` that finds its wrapper's entry changed since its last;
a wrapper remembers the value it checked out under, and a parked connection taken back
under another value goes back to its pool instead, so Django connects through
``connect()``, which finds the pool the settings now lead to.
"""

from __future__ import annotations

from typing import Any

from django.core.signals import setting_changed


class _Epoch:
    value = 0


epoch = _Epoch()


def bump(**kwargs: Any) -> None:
    epoch.value += 1


setting_changed.connect(bump, dispatch_uid="django_dataflow.settings_epoch")
