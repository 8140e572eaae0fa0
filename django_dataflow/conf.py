"""Every ``DATAFLOW_*`` setting: one place for names, defaults and validation.

Read on every use (a ``getattr`` on settings), so ``override_settings`` works without
receivers. A wrong value raises ImproperlyConfigured naming the setting (the system checks
call ``settings_problems()`` to list them all at once). ``DATAFLOW_ROUTING`` is a whole
description of databases; its name lives here and its parser in ``routing/config.py``.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

STATS_DIR = "DATAFLOW_STATS_DIR"
STATS_PUBLISH = "DATAFLOW_STATS_PUBLISH"
STATS_INTERVAL = "DATAFLOW_STATS_INTERVAL"
CHECK_THRESHOLDS = "DATAFLOW_CHECK_THRESHOLDS"
METRICS_TOKEN = "DATAFLOW_METRICS_TOKEN"
APPLICATION_NAME_PREFIX = "DATAFLOW_APPLICATION_NAME_PREFIX"
WORKER_PROCESSES = "DATAFLOW_WORKER_PROCESSES"
ROUTING = "DATAFLOW_ROUTING"
OPENTELEMETRY = "DATAFLOW_OPENTELEMETRY"

# Where the worker count comes from when the setting is not given (gunicorn and uvicorn
# read it too).
WORKERS_ENV = "WEB_CONCURRENCY"

DEFAULT_INTERVAL = 2.0
DEFAULT_APPLICATION_NAME_PREFIX = "django-dataflow"
# The guide's alerts: pool usage above 80 %, more than 5 waiting, a wait over 1 s.
DEFAULT_THRESHOLDS: dict[str, float] = {"usage": 0.8, "wait_queue": 5, "wait_time_max": 1.0}
# The largest values that make sense: an hour between looks; a usage ratio (overflow
# takes it above 1), waiters and seconds far beyond any real pool.
MAX_INTERVAL = 3600.0
MAX_THRESHOLDS: dict[str, float] = {"usage": 1000.0, "wait_queue": 1e6, "wait_time_max": 86400.0}
# The environment variable that names a per-user runtime directory (systemd's /run/user/<uid>).
RUNTIME_DIR_ENV = "XDG_RUNTIME_DIR"


def _number(name: str, value: Any, minimum: float, maximum: float) -> float:
    # inf would stop the publisher's wait for ever; nan compares false with everything;
    # an int too large for a float (10**400) would raise OverflowError where it is used.
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (isinstance(value, float) and not math.isfinite(value))
        or not minimum <= value <= maximum
    ):
        raise ImproperlyConfigured(
            f"settings.{name} must be a finite number from {minimum:g} to {maximum:g}, "
            f"not {_short(value)}."
        )
    return float(value)


def _short(value: Any) -> str:
    """``repr(value)``, cut short (a 400-digit number in a message helps nobody)."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else "a huge number"
    return text if len(text) <= 80 else text[:77] + "..."


def publish_enabled() -> bool:
    value = getattr(settings, STATS_PUBLISH, True)
    if not isinstance(value, bool):
        raise ImproperlyConfigured(
            f"settings.{STATS_PUBLISH} must be True or False, not {value!r}."
        )
    return value


def opentelemetry_enabled() -> bool:
    """Export the pools' OpenTelemetry metrics (read once, by AppConfig.ready())."""
    value = getattr(settings, OPENTELEMETRY, False)
    if not isinstance(value, bool):
        raise ImproperlyConfigured(
            f"settings.{OPENTELEMETRY} must be True or False, not {_short(value)}."
        )
    return value


def publish_interval() -> float:
    """Seconds between two looks at this process's pools (a write only if they changed)."""
    value = getattr(settings, STATS_INTERVAL, DEFAULT_INTERVAL)
    return _number(STATS_INTERVAL, value, 0.1, MAX_INTERVAL)


def heartbeat_interval() -> float:
    """A snapshot is rewritten at least this often, even unchanged, to show it is live."""
    return max(10.0, 5 * publish_interval())


def stale_after() -> float:
    """A snapshot not rewritten for this long belongs to a stuck or vanished process."""
    return 3 * heartbeat_interval()


def _project_identity() -> str:
    """What tells this project from another on the same machine: the settings module
    and the file it was loaded from (two checkouts of one project differ by path)."""
    module = getattr(settings, "SETTINGS_MODULE", None) or "unconfigured"
    loaded = sys.modules.get(module)
    where = getattr(loaded, "__file__", None) or str(getattr(settings, "BASE_DIR", ""))
    return f"{module}\0{os.path.realpath(where) if where else ''}"


def _project_label() -> str:
    identity = _project_identity()
    module = identity.split("\0", 1)[0]
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    label = re.sub(r"[^A-Za-z0-9_.-]", "_", module)[:60]
    return f"{label}-{digest}"


def _runtime_dir(candidate: str | None) -> Path | None:
    """``candidate`` if it is a per-user runtime directory: absolute, ours, private."""
    if not candidate or not os.path.isabs(candidate) or not hasattr(os, "getuid"):
        return None
    try:
        info = os.stat(candidate)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None
    return Path(candidate)


def _tmp_stats_dir() -> Path:
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"django-dataflow-{uid}" / _project_label()


def default_stats_dir() -> Path:
    """``$XDG_RUNTIME_DIR/django-dataflow/<settings module>-<hash>`` when the user has a
    private runtime directory (nobody else can create a path in it first), else
    ``<tempdir>/django-dataflow-<uid>/<settings module>-<hash>``."""
    runtime = _runtime_dir(os.environ.get(RUNTIME_DIR_ENV))
    if runtime is not None:
        return runtime / "django-dataflow" / _project_label()
    return _tmp_stats_dir()


def _configured_stats_dir() -> Path | None:
    value = getattr(settings, STATS_DIR, None) or os.environ.get(STATS_DIR) or None
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise ImproperlyConfigured(f"settings.{STATS_DIR} must be a path, not {value!r}.")
    return Path(value).expanduser()


def stats_dir() -> Path:
    """Where snapshots go: ``settings.DATAFLOW_STATS_DIR``, else the environment variable
    of the same name, else ``default_stats_dir()``."""
    return _configured_stats_dir() or default_stats_dir()


def reader_stats_dir() -> Path:
    """Where readers look: ``stats_dir()``; by default the first of the runtime and the
    temporary directory that exists, so a command run without ``XDG_RUNTIME_DIR``
    (``sudo -u``, cron) finds the snapshots of workers that had it, and the reverse."""
    configured = _configured_stats_dir()
    if configured is not None:
        return configured
    uid = os.getuid() if hasattr(os, "getuid") else None
    candidates = [default_stats_dir()]
    if uid is not None:
        runtime = _runtime_dir(os.environ.get(RUNTIME_DIR_ENV)) or _runtime_dir(f"/run/user/{uid}")
        if runtime is not None:
            candidates.append(runtime / "django-dataflow" / _project_label())
    candidates.append(_tmp_stats_dir())
    for candidate in candidates:
        if os.path.lexists(candidate):
            return candidate
    return candidates[0]


def check_thresholds(**overrides: float | None) -> dict[str, float]:
    """The health thresholds: defaults, then ``settings.DATAFLOW_CHECK_THRESHOLDS``, then
    ``overrides`` that are not None (command-line options)."""
    configured = getattr(settings, CHECK_THRESHOLDS, None)
    if configured is None:
        configured = {}
    if not isinstance(configured, dict):
        raise ImproperlyConfigured(
            f"settings.{CHECK_THRESHOLDS} must be a dict, not {configured!r}."
        )
    thresholds = dict(DEFAULT_THRESHOLDS)
    given = {**configured, **{key: value for key, value in overrides.items() if value is not None}}
    for key, value in given.items():
        if key not in DEFAULT_THRESHOLDS:
            raise ImproperlyConfigured(
                f"settings.{CHECK_THRESHOLDS} has an unknown key {key!r}; "
                f"valid keys: {', '.join(DEFAULT_THRESHOLDS)}."
            )
        name = f"{CHECK_THRESHOLDS}[{key!r}]"
        thresholds[key] = _number(name, value, 0, MAX_THRESHOLDS[key])
    return thresholds


def metrics_token() -> str | None:
    """A bearer token that may read the stats views without a staff login (or None)."""
    token = getattr(settings, METRICS_TOKEN, None) or None
    if token is not None and not isinstance(token, str):
        # The type only: the value is a secret, and this error is logged with each request.
        raise ImproperlyConfigured(
            f"settings.{METRICS_TOKEN} must be a string, not {type(token).__name__}."
        )
    return token


def settings_problems() -> list[str]:
    """What is wrong with the monitoring settings, each message naming its setting (for
    the system check: otherwise each is raised only where it is first read, in a signal
    receiver, a view or the publisher thread)."""
    readers = (
        publish_enabled,
        publish_interval,
        stats_dir,
        check_thresholds,
        metrics_token,
        application_name_prefix,
        opentelemetry_enabled,
    )
    problems = []
    for read in readers:
        try:
            read()
        except ImproperlyConfigured as error:
            problems.append(str(error))
    return problems


def application_name_prefix() -> str | None:
    """Prefix of the ``application_name`` pooled connections report; None: do not set one."""
    prefix = getattr(settings, APPLICATION_NAME_PREFIX, DEFAULT_APPLICATION_NAME_PREFIX)
    if prefix in (None, "", False):
        return None
    if not isinstance(prefix, str):
        raise ImproperlyConfigured(
            f"settings.{APPLICATION_NAME_PREFIX} must be a string or None, not {prefix!r}."
        )
    return prefix


def worker_processes() -> tuple[int, str]:
    """(how many worker processes each open pools, where that number came from).

    ``settings.DATAFLOW_WORKER_PROCESSES``, else the ``WEB_CONCURRENCY`` environment
    variable, else 1 (gunicorn's and uvicorn's default). Raises ImproperlyConfigured
    naming the source of a value that is not a positive whole number.
    """
    value: Any = getattr(settings, WORKER_PROCESSES, None)
    source = f"settings.{WORKER_PROCESSES}"
    if value is None:
        value = os.environ.get(WORKERS_ENV, "").strip() or None
        source = f"the {WORKERS_ENV} environment variable"
    if value is None:
        return 1, f"the default (neither settings.{WORKER_PROCESSES} nor {WORKERS_ENV} is set)"
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ImproperlyConfigured(f"{source} must be a whole number >= 1, not {value!r}.")
    return value, source
