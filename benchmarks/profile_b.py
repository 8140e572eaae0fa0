"""Where the time goes in workload (b), warm: ``python benchmarks/profile_b.py``.

Why it exists: on MariaDB, ours served fewer requests per second than 50 persistent
connections in (b), where it does no pool work but park and take back. This runs the same
warm burst (50 threads, ``SELECT 1`` + 1 ms of app work, pool 20 + 30) for one contender
with each thread's timed requests under a ``cProfile.Profile`` of its own, merges them and
prints the functions by wall time (a call that gives up the interpreter lock is charged
the wait to get it back, which is what 50 threads pay), per request. The warm-up and the
first ``--skip`` timed requests are not profiled.

``--compare`` instead measures requests/s of ``persistent`` and ``ours`` (and, with
``--trial pydll``, ours with MariaDB's status read through ``ctypes.PyDLL``, which keeps
the interpreter lock: a trial of a package change, patched in this process only) in
interleaved runs, longer than run.py's, and prints the medians of the per-run ratios.

    python benchmarks/profile_b.py --vendor mysql --contender ours
    python benchmarks/profile_b.py --vendor mysql --compare --trial pydll --runs 9
"""

from __future__ import annotations

import argparse
import cProfile
import ctypes
import ctypes.util
import itertools
import pstats
import statistics
import sys
import threading
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import bootstrap  # noqa: E402


def pydll_status_reader() -> Any:
    """MariaDB's server-status read as ``backends/mysql/connector.py`` does it, but
    through ``ctypes.PyDLL``: the call keeps the interpreter lock."""
    library = ctypes.PyDLL(ctypes.util.find_library("mariadb") or "libmariadb.so.3")
    get_info = library.mariadb_get_infov
    get_info.restype = ctypes.c_char
    get_info.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    capsule_pointer.restype = ctypes.c_void_p
    capsule_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]

    def read(connection: Any) -> int | None:
        if not connection.open:
            return None
        native = getattr(connection, "_dataflow_native_handle", None)
        if native is None:
            native = capsule_pointer(
                connection._get_native_connection(), b"_mysql.connection.native_connection"
            )
            connection._dataflow_native_handle = native
        status = ctypes.c_uint()
        if get_info(native, 30, ctypes.byref(status)) != b"\x00":
            return None
        return status.value

    return read


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vendor", default="mysql", choices=("postgresql", "mysql", "sqlite"))
    parser.add_argument("--contender", default="ours")
    parser.add_argument("--threads", type=int, default=50)
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--skip", type=int, default=500, help="timed requests not profiled")
    parser.add_argument("--work-ms", type=float, default=1.0)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument(
        "--callers", action="append", default=[], help="also list the callers of these functions"
    )
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--trial", choices=("pydll",), action="append", default=[])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-bootstrap", action="store_true")
    args = parser.parse_args(argv)
    if not args.no_bootstrap:
        bootstrap.ensure_venv_and_reexec(sys.argv)

    from benchmarks.contenders import (
        PoolShape,
        build_contenders,
        databases_setting,
        dispose,
        probe,
    )
    from benchmarks.run import configure_django
    from benchmarks.servers import open_monitor

    monitor = open_monitor(args.vendor)
    keys = ["persistent", "ours"] if args.compare else [args.contender]
    contenders = build_contenders([args.vendor], keys, PoolShape(), {args.vendor: monitor.client})
    configure_django(databases_setting(contenders), with_app=True)
    for contender in contenders:
        probe(contender)
        if not contender.available:
            print(f"{contender.key}: {contender.unavailable}", file=sys.stderr)
            return 1

    work_s = args.work_ms / 1000.0
    try:
        if args.compare:
            compare(contenders, monitor, args, work_s)
        else:
            profile(contenders[0], args, work_s)
    finally:
        for contender in contenders:
            dispose(contender)
        monitor.close()
    return 0


def compare(contenders: list[Any], monitor: Any, args: argparse.Namespace, work_s: float) -> None:
    from benchmarks.contenders import dispose
    from benchmarks.machine import load_average
    from benchmarks.workloads import concurrent_run

    persistent, ours = contenders
    variants: dict[str, tuple[Any, Any]] = {"persistent": (persistent, None), "ours": (ours, None)}
    if "pydll" in args.trial:
        variants["ours+pydll"] = (ours, pydll_status_reader())
    connector = None
    original = None
    if args.vendor == "mysql":
        from django_dataflow.backends.mysql import connector

        original = connector.read_server_status
    rps: dict[str, list[float]] = {key: [] for key in variants}
    for number in range(args.runs):
        order = list(variants) if number % 2 == 0 else list(reversed(variants))
        for key in order:
            contender, reader = variants[key]
            if connector is not None:
                connector.read_server_status = reader or original
            run = concurrent_run(contender, args.threads, args.requests, work_s, args.warmup)
            dispose(contender)
            monitor.wait_until_no_clients()
            rps[key].append(run.rps)
            if run.errors:
                print(f"  {key}: {run.errors} errors, {run.first_error}", file=sys.stderr)
        print(
            f"run {number + 1}/{args.runs} (load {load_average()}): "
            + ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in rps.items()),
            flush=True,
        )
    if connector is not None:
        connector.read_server_status = original
    for key, values in rps.items():
        ratios = [a / b for a, b in zip(values, rps["persistent"], strict=True)]
        print(
            f"{key}: median {statistics.median(values):.0f} req/s, x persistent "
            f"{statistics.median(ratios):.3f} (per run {min(ratios):.2f}-{max(ratios):.2f})"
        )


def profile(contender: Any, args: argparse.Namespace, work_s: float) -> None:
    from benchmarks import workloads

    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    local = threading.local()
    calls = itertools.count()
    original = workloads.request_direct
    skip = args.warmup + args.skip

    def profiled(alias: str, work: float = 0.0) -> None:
        if next(calls) < skip:
            return original(alias, work)
        prof = getattr(local, "profile", None)
        if prof is None:
            prof = local.profile = cProfile.Profile()
            with lock:
                profiles.append(prof)
        prof.enable()
        try:
            return original(alias, work)
        finally:
            prof.disable()

    workloads.request_direct = profiled
    try:
        run = workloads.concurrent_run(
            contender, args.threads, args.requests, work_s, warmup=args.warmup
        )
    finally:
        workloads.request_direct = original
    profiled_requests = max(1, args.requests - args.skip)
    print(
        f"{contender.key} on {contender.vendor}: {run.rps:.0f} req/s under the profiler, "
        f"{profiled_requests} requests profiled; wall µs per request:"
    )
    stats = pstats.Stats(profiles[0])
    for prof in profiles[1:]:
        stats.add(prof)
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)  # type: ignore[attr-defined]
    print(f"{'calls/req':>9} {'own µs/req':>10} {'cum µs/req':>10}  function")
    for (filename, line, name), (_cc, ncalls, tottime, cumtime, _callers) in rows[: args.top]:
        where = f"{Path(filename).name}:{line}({name})" if line else name
        print(
            f"{ncalls / profiled_requests:9.2f} {tottime / profiled_requests * 1e6:10.1f} "
            f"{cumtime / profiled_requests * 1e6:10.1f}  {where}"
        )
    for name in args.callers:
        stats.strip_dirs().print_callers(name)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
