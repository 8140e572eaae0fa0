"""Run Django's own test suite with our database ENGINEs and compare with Django's stock ones.

Why this exists: django_dataflow's backends subclass Django's DatabaseWrapper and reroute
connect/close through a pool. Django's suite for ``backends``, ``transactions`` and friends
is the most thorough description of what a DatabaseWrapper must keep doing, so we run it
with our ENGINE and with Django's stock ENGINE on the same server, interpreter and Django
version, and require that every test failing with ours also fails with stock (or is listed,
with a reason, in deviations.py). Each (vendor, mode) pair that matches counts as passed.

    python tests/integration/django_suite/run.py [--vendor postgresql,mysql,sqlite] [--modules ...]
        [--mode serial,parallel] [--engine both|dataflow|stock]

It downloads the sdist of the installed Django into .cache/django-src/ (once), installs
the few test requirements the chosen modules need into .cache/django-src/deps-pyX.Y/
(not into the environment), and runs ``tests/runtests.py`` from it with the settings in
djsuite_settings/. ``--engine dataflow`` reuses the last stock result of the same
combination from .cache/django-suite/stock/ when there is one. Logs and per-test records
go to .cache/django-suite/runs/<time>-<pid>/; test databases are named djsuite_<pid>_...,
so overlapping invocations do not collide. The last line is ``N passed, M failed``; the
exit status is non-zero on any mismatch, and on an unreachable database server when $CI is set.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
SRC_CACHE = REPO / ".cache" / "django-src"
WORK = REPO / ".cache" / "django-suite"
KEEP_RUNS = 10  # invocation directories kept under WORK/runs/

DEFAULT_MODULES = ("backends", "transactions", "transaction_hooks", "basic", "select_for_update")
# Added to the default modules on PostgreSQL only (elsewhere every test of it is skipped):
# django.contrib.postgres keeps per-connection state (hstore and citext type handlers,
# registered by a connection_created receiver) that migrations re-create (issue 22). The
# whole module: about 4 s a run here (615 tests), 16 s for both modes and engines.
POSTGRESQL_MODULES = ("postgres_tests",)
MODES = {"serial": 1, "parallel": 2}
ENGINES = ("stock", "dataflow")
BAD_OUTCOMES = {"fail", "error", "xpass"}
# What a test outcome is worth when one id is reported twice (parallel setUpClass errors).
SEVERITY = {"skip": 0, "xfail": 1, "ok": 1, "xpass": 2, "fail": 3, "error": 4}


@dataclass(frozen=True)
class Target:
    """One database set-up to run the suite against."""

    name: str
    settings: str
    server: str | None  # the server it needs, None for SQLite
    extra_modules: tuple[str, ...] = ()  # run with the default modules, on this target only


TARGETS = {
    t.name: t
    for t in (
        Target("postgresql", "djsuite_settings.postgresql", "postgresql", POSTGRESQL_MODULES),
        Target("mysql", "djsuite_settings.mysql", "mysql"),
        Target("sqlite-memory", "djsuite_settings.sqlite_memory", None),
        Target("sqlite-file", "djsuite_settings.sqlite_file", None),
    )
}
VENDORS = {
    "postgresql": ("postgresql",),
    "mysql": ("mysql",),
    "sqlite": ("sqlite-memory", "sqlite-file"),
    **{name: (name,) for name in TARGETS},
}
# server -> (host variable, port variable, default port); the names tests/dbsettings use.
SERVERS = {
    "postgresql": ("POSTGRES_HOST", "POSTGRES_PORT", 5432),
    "mysql": ("MYSQL_HOST", "MYSQL_PORT", 3306),
}
# Test requirements that Django's suite needs here: (distribution, module, requirements
# file naming it, which targets). tblib carries tracebacks out of parallel workers.
TEST_DEPS = (
    ("tblib", "tblib", "py3.txt", None),
    ("psycopg-pool", "psycopg_pool", "postgres.txt", "postgresql"),
)


# --- results -----------------------------------------------------------------------------


@dataclass
class RunResult:
    """The outcome of one runtests.py invocation, read back from the records file."""

    engine: str
    seconds: float
    returncode: int | None  # None: killed after the timeout
    outcomes: dict[str, str]
    details: dict[str, str]
    finished: bool
    log: str
    cached: bool = False

    @property
    def bad(self) -> set[str]:
        return {t for t, o in self.outcomes.items() if o in BAD_OUTCOMES}

    @property
    def skipped(self) -> set[str]:
        return {t for t, o in self.outcomes.items() if o == "skip"}

    def skip_reason(self, test_id: str) -> str:
        return "skipped: " + self.details.get(test_id, "")

    def problem(self) -> str | None:
        """Why this run cannot be trusted, if it cannot."""
        if self.returncode is None:
            return f"{self.engine}: timed out after {self.seconds:.0f}s, see {self.log}"
        if not self.finished:
            tail = last_line(Path(self.log).read_text(errors="replace"))
            return f"{self.engine}: crashed (exit {self.returncode}): {tail}\n    see {self.log}"
        if bool(self.returncode) != bool(self.bad):
            return f"{self.engine}: exit {self.returncode} with {len(self.bad)} failing tests"
        return None

    def describe(self) -> str:
        text = f"{len(self.outcomes)} tests, {len(self.bad)} bad, {len(self.skipped)} skip"
        text += " (cached)" if self.cached else f", {self.seconds:.1f}s"
        return text if self.problem() is None else text + ", CRASHED"

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "cached"}

    @classmethod
    def from_json(cls, data: dict) -> RunResult:
        return cls(**data, cached=True)


def read_records(path: Path) -> tuple[dict[str, str], dict[str, str], bool]:
    """Outcomes, details (tracebacks, skip reasons) and whether the run reached its end."""
    outcomes: dict[str, str] = {}
    details: dict[str, str] = {}
    finished = False
    if not path.exists():
        return outcomes, details, finished
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # the last line of a killed run
            continue
        if record["kind"] == "done":
            finished = True
        elif record["kind"] == "test":
            test_id, outcome = record["id"], record["outcome"]
            if SEVERITY[outcome] >= SEVERITY.get(outcomes.get(test_id, "skip"), 0):
                outcomes[test_id] = outcome
                details[test_id] = record["detail"]
    return outcomes, details, finished


@dataclass
class Comparison:
    """How a dataflow run differs from the stock run of the same combination."""

    new: dict[str, str] = field(default_factory=dict)  # id -> traceback
    deviated: dict[str, str] = field(default_factory=dict)  # id -> deviations key
    fixed: list[str] = field(default_factory=list)
    skipped_stock_only: list[str] = field(default_factory=list)
    skipped_dataflow_only: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.new and not self.problems


def compare(stock: RunResult, dataflow: RunResult, deviation_key) -> Comparison:
    """Dataflow passes when its failures are stock's failures plus listed deviations."""
    result = Comparison(problems=[p for p in (stock.problem(), dataflow.problem()) if p])
    for test_id in sorted(dataflow.bad - stock.bad):
        key = deviation_key(test_id)
        if key is None:
            result.new[test_id] = dataflow.details.get(test_id, "")
        else:
            result.deviated[test_id] = key
    result.fixed = sorted(stock.bad - dataflow.bad)
    if result.problems:
        return result  # a crashed run's missing tests would only bury the problem
    # Tests skipped by one engine and run by the other; failures are reported above.
    result.skipped_stock_only = sorted(stock.skipped - dataflow.skipped - dataflow.bad)
    result.skipped_dataflow_only = sorted(dataflow.skipped - stock.skipped - stock.bad)
    # A subtest's id is "<test id> <params>"; its test then has no record of its own.
    subtest_parents = {t.split(" ")[0] for t in dataflow.outcomes if " " in t}
    result.missing = sorted(set(stock.outcomes) - set(dataflow.outcomes) - subtest_parents)
    return result


# --- preparing Django's test suite -------------------------------------------------------


def django_version() -> str:
    try:
        import django
    except ImportError:
        sys.exit(f"Django is not installed for {sys.executable}; install it first.")
    return django.__version__


def find_sdist(version: str) -> Path | None:
    wanted = {f"django-{version}.tar.gz"}
    return next((p for p in SRC_CACHE.glob("*.tar.gz") if p.name.lower() in wanted), None)


def download_sdist(version: str) -> Path:
    print(f"Downloading the Django {version} sdist into {SRC_CACHE} ...", flush=True)
    SRC_CACHE.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", f"django=={version}"]
    cmd += ["--no-deps", "--no-binary", ":all:", "--quiet", "--dest", str(SRC_CACHE)]
    subprocess.run(cmd, check=True)
    sdist = find_sdist(version)
    if sdist is None:
        sys.exit(f"pip download did not leave a Django {version} sdist in {SRC_CACHE}")
    return sdist


def django_tests_dir(version: str) -> Path:
    """Django's tests/ directory for ``version``, downloaded and extracted once."""
    dest = SRC_CACHE / f"django-{version}"
    if (dest / "tests" / "runtests.py").exists():
        return dest / "tests"
    sdist = find_sdist(version) or download_sdist(version)
    with tempfile.TemporaryDirectory(dir=SRC_CACHE) as tmp, tarfile.open(sdist) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(tmp, filter="data")
        else:  # Python without PEP 706 extraction filters
            tar.extractall(tmp)
        (top,) = Path(tmp).iterdir()
        shutil.rmtree(dest, ignore_errors=True)
        top.rename(dest)
    return dest / "tests"


def deps_dir() -> Path:
    return SRC_CACHE / f"deps-py{sys.version_info.major}.{sys.version_info.minor}"


def requirement_spec(tests_dir: Path, dist: str, req_file: str) -> str:
    """The line naming ``dist`` in Django's requirements file (its version bounds)."""
    for line in (tests_dir / "requirements" / req_file).read_text().splitlines():
        requirement = line.split(";")[0].strip()
        name = re.match(r"[A-Za-z0-9_.-]*", requirement).group()
        if name.lower().replace("_", "-") == dist:
            return requirement
    return dist


def ensure_test_deps(tests_dir: Path, targets: list[Target]) -> None:
    """pip-install the missing test requirements into deps_dir(), not the environment."""
    servers = {t.server for t in targets}
    search_path = [*sys.path, str(deps_dir())]
    for dist, module, req_file, server in TEST_DEPS:
        if server is not None and server not in servers:
            continue
        if importlib.machinery.PathFinder.find_spec(module, search_path) is not None:
            continue
        spec = requirement_spec(tests_dir, dist, req_file)
        print(f"Installing {spec} into {deps_dir()} ...", flush=True)
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
        subprocess.run([*cmd, "--target", str(deps_dir()), spec], check=True)


# --- running -------------------------------------------------------------------------------


def server_unreachable(server: str) -> str | None:
    """A message if the server's port does not accept connections, else None."""
    host_var, port_var, default_port = SERVERS[server]
    host = os.environ.get(host_var, "127.0.0.1")
    port = int(os.environ.get(port_var, default_port))
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        return f"{server} at {host}:{port} is unreachable ({exc})"
    return None


def suite_env(engine: str, records: Path, sqlite_dir: str, args) -> dict[str, str]:
    paths = [str(HERE), str(deps_dir()), str(REPO), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))
    env.update(DJSUITE_ENGINE=engine, DJSUITE_RESULTS=str(records))
    env.setdefault("DJSUITE_DB_PREFIX", f"djsuite_{os.getpid()}_")
    env.update(DJSUITE_SQLITE_DIR=sqlite_dir, DJSUITE_INSTALL_APP="0" if args.no_app else "1")
    env.update(DJSUITE_POOL_SCOPE=args.pool_scope)
    return env


def run_process(cmd: list[str], cwd: Path, env: dict, log: Path, timeout: float) -> int | None:
    """Run cmd with its output in log; kill its process group after timeout (-> None)."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def run_suite(target: Target, mode: str, engine: str, tests_dir: Path, args) -> RunResult:
    """One runtests.py run; its records and log go to this invocation's directory."""
    name = f"{target.name}-{mode}-{engine}"
    records, log = args.run_dir / f"{name}.jsonl", args.run_dir / f"{name}.log"
    cmd = [sys.executable, str(tests_dir / "runtests.py"), f"--settings={target.settings}"]
    cmd += [f"--parallel={MODES[mode]}", "--noinput", "-v", "2", *target_modules(target, args)]
    sqlite_dir = tempfile.mkdtemp(prefix="djsuite-sqlite-")
    start = time.monotonic()
    try:
        env = suite_env(engine, records, sqlite_dir, args)
        returncode = run_process(cmd, tests_dir, env, log, args.timeout)
    finally:
        shutil.rmtree(sqlite_dir, ignore_errors=True)
    seconds = time.monotonic() - start
    outcomes, details, finished = read_records(records)
    result = RunResult(engine, seconds, returncode, outcomes, details, finished, str(log))
    print(f"  {target.name:<13} {mode:<8} {engine:<8} {result.describe()}", flush=True)
    return result


def target_modules(target: Target, args) -> list[str]:
    """The test labels run on ``target``: the default modules get its extra ones."""
    if args.default_modules:
        return [*args.modules, *target.extra_modules]
    return list(args.modules)


def stock_cache_path(target: Target, mode: str, args) -> Path:
    """Keyed by Django and Python version, target, mode and the test modules."""
    digest = hashlib.sha1(",".join(sorted(target_modules(target, args))).encode()).hexdigest()[:8]
    python = f"py{sys.version_info.major}.{sys.version_info.minor}"
    name = f"django-{args.django}-{python}-{target.name}-{mode}-{digest}.json"
    return WORK / "stock" / name


def stock_result(target: Target, mode: str, tests_dir: Path, args) -> RunResult:
    """Run stock, or with --engine dataflow reuse its cached result when there is one."""
    cache = stock_cache_path(target, mode, args)
    if args.engine == "dataflow" and cache.exists():
        result = RunResult.from_json(json.loads(cache.read_text()))
        print(f"  {target.name:<13} {mode:<8} {'stock':<8} {result.describe()}", flush=True)
        return result
    result = run_suite(target, mode, "stock", tests_dir, args)
    if result.problem() is None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(result.to_json()))
        partial.replace(cache)
    return result


@dataclass
class Row:
    """One (target, mode) line of the summary."""

    target: str
    mode: str
    passed: bool
    status: str
    stock: RunResult | None = None
    dataflow: RunResult | None = None
    comparison: Comparison | None = None


def run_combination(target: Target, mode: str, tests_dir: Path, args, deviation_key) -> Row:
    stock = stock_result(target, mode, tests_dir, args)
    if args.engine == "stock":
        problem = stock.problem()
        return Row(target.name, mode, problem is None, problem or "ran", stock=stock)
    dataflow = run_suite(target, mode, "dataflow", tests_dir, args)
    comparison = compare(stock, dataflow, deviation_key)
    status = "match" if comparison.ok else "MISMATCH"
    return Row(target.name, mode, comparison.ok, status, stock, dataflow, comparison)


# --- reporting -----------------------------------------------------------------------------


def last_line(traceback: str) -> str:
    lines = [line for line in traceback.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no traceback recorded)"


MAX_LISTED = 60


def print_ids(title: str, ids, describe=None) -> None:
    """A titled list of test ids, each with an optional second line; long lists are cut."""
    if not ids:
        return
    print(f"  {title} ({len(ids)}):")
    for test_id in ids[:MAX_LISTED]:
        print(f"    {test_id}")
        if describe:
            print(textwrap.indent(describe(test_id), " " * 8))
    if len(ids) > MAX_LISTED:
        print(f"    ... and {len(ids) - MAX_LISTED} more (all in the run's .jsonl records)")


def has_differences(comp: Comparison) -> bool:
    return any(vars(comp).values())


def print_comparison(row: Row, show_tracebacks: bool) -> None:
    comp, stock, dataflow = row.comparison, row.stock, row.dataflow
    if comp is None or not has_differences(comp):
        return
    print(f"\n== {row.target} / {row.mode}: {row.status} (log: {dataflow.log})")
    for problem in comp.problems:
        print(f"  PROBLEM: {problem}")
    shown = (
        (lambda t: comp.new[t].strip()) if show_tracebacks else (lambda t: last_line(comp.new[t]))
    )
    print_ids("fail only with dataflow", list(comp.new), shown)
    print_ids("fail with dataflow, listed in deviations.py", list(comp.deviated))
    print_ids("fail only with stock", comp.fixed, lambda t: last_line(stock.details[t]))
    print_ids("skipped only with stock", comp.skipped_stock_only, stock.skip_reason)
    print_ids("skipped only with dataflow", comp.skipped_dataflow_only, dataflow.skip_reason)
    print_ids("ran with stock, absent with dataflow", comp.missing)


def print_unused_deviations(rows: list[Row], deviations: dict[str, str]) -> None:
    """Only meaningful after a full run (every target, mode and default module)."""
    compared = {(r.target, r.mode) for r in rows if r.comparison is not None}
    if compared != {(t, m) for t in TARGETS for m in MODES}:
        return
    used = {key for r in rows if r.comparison for key in r.comparison.deviated.values()}
    print_ids("deviations.py entries no run needed", sorted(set(deviations) - used))


def print_summary(rows: list[Row]) -> None:
    print(f"\n{'target':<13} {'mode':<8} {'stock':<36} {'dataflow':<36} result")
    for row in rows:
        stock = row.stock.describe() if row.stock else "-"
        dataflow = row.dataflow.describe() if row.dataflow else "-"
        print(f"{row.target:<13} {row.mode:<8} {stock:<36} {dataflow:<36} {row.status}")


# --- command line --------------------------------------------------------------------------


def comma_list(allowed):
    def parse(value: str) -> list[str]:
        items = [v.strip() for v in value.split(",") if v.strip()]
        unknown = [v for v in items if v not in allowed]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {sorted(allowed)}")
        return items

    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--vendor",
        type=comma_list(VENDORS),
        default=["postgresql", "mysql", "sqlite"],
        help="comma list: postgresql, mysql, sqlite (= sqlite-memory,sqlite-file)",
    )
    parser.add_argument(
        "--mode",
        type=comma_list(MODES),
        default=list(MODES),
        help="comma list: serial (--parallel 1), parallel (--parallel 2)",
    )
    parser.add_argument(
        "--modules",
        nargs="+",
        default=None,
        help="Django test labels (space or comma separated); by default "
        f"{' '.join(DEFAULT_MODULES)}, and on PostgreSQL {' '.join(POSTGRESQL_MODULES)}",
    )
    parser.add_argument(
        "--engine",
        choices=("both", *ENGINES),
        default="both",
        help="dataflow alone reuses a cached stock result when there is one",
    )
    parser.add_argument(
        "--no-app",
        action="store_true",
        help="do not add django_dataflow to INSTALLED_APPS in dataflow runs",
    )
    parser.add_argument(
        "--pool-scope",
        choices=("request", "transaction"),
        default="request",
        help="POOL['pool_scope'] of our engines (the stock runs do not depend on it)",
    )
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per runtests run")
    parser.add_argument(
        "--tracebacks",
        action="store_true",
        help="print whole tracebacks of new failures, not just the last line",
    )
    args = parser.parse_args(argv)
    args.default_modules = args.modules is None
    modules = DEFAULT_MODULES if args.default_modules else args.modules
    args.modules = [m for item in modules for m in item.split(",") if m]
    return args


def selected_targets(vendors: list[str]) -> list[Target]:
    names = dict.fromkeys(name for vendor in vendors for name in VENDORS[vendor])
    return [TARGETS[name] for name in names]


def new_run_dir() -> Path:
    """A directory of its own for this invocation's logs and records; old ones are pruned.

    Runs may overlap (a developer's and a script's), so nothing is shared but the stock cache.
    """
    runs = WORK / "runs"
    run_dir = runs / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    run_dir.mkdir(parents=True)
    for old in sorted(runs.iterdir())[:-KEEP_RUNS]:
        shutil.rmtree(old, ignore_errors=True)
    return run_dir


def load_deviations():
    """deviations.py by path, so run.py works however it is started."""
    spec = importlib.util.spec_from_file_location("djsuite_deviations", HERE / "deviations.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reachable_targets(targets: list[Target]) -> tuple[list[Target], list[Row]]:
    """Targets whose server answers; unreachable ones become failed rows under CI."""
    ok, rows, messages = [], [], {}
    for target in targets:
        if target.server and target.server not in messages:
            messages[target.server] = server_unreachable(target.server)
        message = messages.get(target.server) if target.server else None
        if message is None:
            ok.append(target)
        elif os.environ.get("CI"):
            print(f"ERROR: {message}; CI is set, so this fails the run.")
            rows.append(Row(target.name, "-", False, "UNREACHABLE"))
        else:
            print(f"SKIPPING {target.name}: {message} (set CI=1 to make this a failure).")
    return ok, rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    deviations = load_deviations()
    known = deviations.deviations_for(args.pool_scope)

    def deviation_key(test_id: str) -> str | None:
        return deviations.deviation_key(test_id, known)

    targets, rows = reachable_targets(selected_targets(args.vendor))
    args.django = django_version()
    args.run_dir = new_run_dir()
    tests_dir = django_tests_dir(args.django)
    ensure_test_deps(tests_dir, targets)
    extra = " + postgres_tests on PostgreSQL" if args.default_modules else ""
    scope = f", pool_scope={args.pool_scope!r}"
    print(
        f"Django {args.django} suite ({' '.join(args.modules)}{extra}{scope}) with {sys.executable}"
    )
    print(f"Logs and per-test records: {args.run_dir}")
    for target in targets:
        for mode in args.mode:
            rows.append(run_combination(target, mode, tests_dir, args, deviation_key))
    for row in rows:
        print_comparison(row, args.tracebacks)
    if args.default_modules:
        print_unused_deviations(rows, known)
    print_summary(rows)
    passed = sum(row.passed for row in rows)
    print(f"total wall time {time.monotonic() - started:.0f}s")
    print(f"{passed} passed, {len(rows) - passed} failed")
    return 0 if passed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
