"""A randomized chaos stress test of the pool engine (django_dataflow.pool, no Django).

Why it exists: the other engine tests each stage one race on purpose (a gated reset, a
waiter queued behind a park). This one lets twenty threads do everything at once on a
pool of 3 + 2 connections for about a second, with a connector that fails and stalls at
random, and checks the invariants that every one of those races protects:

* never more than pool_size + max_overflow physical connections open or being opened
  (counted by the connector itself: a slot must be reserved before a connect and freed
  only after the close);
* never one connection lent to two borrowers at once (ownership tracked outside the
  engine, under the test's own lock);
* every checkout ends within its timeout (plus a slack for a connect) with a connection,
  a PoolTimeoutError or the injected connect error: nothing hangs, every thread joins;
* at quiescence the statistics add up (checked_out == 0, checkouts == checkins, and the
  engine's counters match what the connector and the borrowers saw), no slot was lost
  (the whole limit can be checked out at once, and not one more);
* after close(), racing with returns, parks and connects, every connection is closed.

What the borrowers do at random, in storms (more borrowers than connections) and calms:
checkouts with short and long timeouts, holds of random lengths (some in an open
transaction), plain returns, discards, disconnects (invalidate plus a generation bump),
connections whose "server" died (the pre-ping replaces them) or that were closed behind
the pool's back, parking and taking back (thread affinity), returns by lease of a parked
connection and from a "finalizer" (return_later), requests in short-lived threads that
end holding their connection or with it parked (dead-thread reclaim). A housekeeper
calls maintain(); pool_recycle and the overflow idle timeout are short, so connections
expire all the time. Then a second, shorter run in which close() comes at a random
moment, with threads still ending while holding their connections: close() closes
those of threads already ended, a closed pool's maintain() those ended since (neither
did before this test found it).

Each seed fixes every random choice; thread interleavings still differ from run to run.
A failure names its seed (the test id and the message): rerun it with ``-k <seed>``.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import sys
import threading
import time
import traceback

import pytest

from django_dataflow.pool import ConnectionPool, PoolClosedError, PoolTimeoutError

SEEDS = [1729, 4242, 90210]
POOL_SIZE, MAX_OVERFLOW = 3, 2
LIMIT = POOL_SIZE + MAX_OVERFLOW
WORKERS = 20
CHAOS_SECONDS = 1.0
# The close phase: close() comes at a random moment within it.
CLOSE_PHASE_SECONDS = 0.4
# How much longer than its timeout a checkout may take before it counts as hung: it may
# still connect (a slow connect, a replacement after a failed pre-ping) after its wait,
# and the machine may be busy. A real hang is caught by the join bound anyway.
SLACK = 2.0
LONG_TIMEOUT = 1.0
JOIN_BOUND = LONG_TIMEOUT + SLACK + 5.0
# How long a pool left alone may take to settle (opener threads finishing slow connects).
SETTLE_BOUND = 5.0
MAX_VIOLATIONS = 30
# The load alternates between storms and calms of this length.
STORM_PERIOD = 0.2


class ChaosConnectError(Exception):
    """The injected connect failure (a refused connection, a server restarting)."""


class ChaosConnector:
    """Real sqlite3 connections to one file, opened slowly or not at all at random.

    It counts physical connections itself (open, plus connects under way) and reports a
    violation the moment a connect starts beyond the limit or a connection is closed
    twice."""

    def __init__(self, path, seed: int, violation, lent_to) -> None:
        self.path = path
        self.violation = violation
        self.lent_to = lent_to
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.fail_rate = 0.08
        self.slow_rate = 0.3
        self.rollback_seconds = (0.0005, 0.004)  # how long a reset's ROLLBACK takes
        self.connecting = 0
        self.open: set[sqlite3.Connection] = set()
        self.closing: set[sqlite3.Connection] = set()
        self.dead: set[sqlite3.Connection] = set()  # their "server" ended the session
        self.peak = 0
        self.connects = 0
        self.failed_connects = 0
        self.closes = 0

    @property
    def live(self) -> int:
        # Under self.lock: physical connections open or being opened.
        return self.connecting + len(self.open)

    def connect(self):
        with self.lock:
            self.connecting += 1
            self.peak = max(self.peak, self.live)
            if self.live > LIMIT:
                self.violation(f"{self.live} connections open or opening (limit {LIMIT})")
            fail = self.rng.random() < self.fail_rate
            delay = self.rng.uniform(0.005, 0.06) if self.rng.random() < self.slow_rate else 0
        try:
            if delay:
                time.sleep(delay)
            if fail:
                raise ChaosConnectError("chaos: connection refused")
            connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except BaseException:
            with self.lock:
                self.connecting -= 1
                self.failed_connects += 1
            raise
        with self.lock:
            self.connecting -= 1
            self.open.add(connection)
            self.connects += 1
        return connection

    def kill(self, connection) -> None:
        with self.lock:
            self.dead.add(connection)

    def ping(self, connection) -> bool:
        if connection in self.dead:
            return False
        try:
            connection.execute("SELECT 1")
        except sqlite3.ProgrammingError:
            return False
        return True

    def has_pending_input(self, connection) -> bool:
        return connection in self.dead  # the server's goodbye would be waiting

    def is_closed(self, connection) -> bool:
        try:
            connection.in_transaction  # noqa: B018  raises once closed
        except sqlite3.ProgrammingError:
            return True
        return False

    def reset(self, connection) -> bool:
        if connection.in_transaction:  # raises once closed: the pool discards it
            with self.lock:
                delay = self.rng.uniform(*self.rollback_seconds)
            # A ROLLBACK is a round trip: returns are overtaken by close(), by others.
            time.sleep(delay)
            connection.rollback()
        return True

    def is_clean(self, connection) -> bool:
        try:
            return not connection.in_transaction
        except sqlite3.ProgrammingError:
            return False

    def close(self, connection) -> None:
        borrower = self.lent_to(connection)
        if borrower is not None:
            # Left open: closing it under its borrower could crash the interpreter.
            self.violation(f"the pool closed a connection lent to {borrower}")
            with self.lock:
                self.open.discard(connection)
                self.closes += 1
            return
        with self.lock:
            if connection not in self.open or connection in self.closing:
                self.violation("a connection was closed twice")
            self.closing.add(connection)
            delay = self.rng.uniform(0.001, 0.01) if self.rng.random() < 0.2 else 0
        if delay:  # a slow close (TLS shutdown, COM_QUIT): the slot must stay taken
            time.sleep(delay)
        connection.close()
        with self.lock:
            self.closing.discard(connection)
            self.open.discard(connection)
            self.closes += 1

    def forget_after_fork(self, connection) -> None:
        pass


class Chaos:
    """One run: the pool, its connector, the borrowers' bookkeeping and the checks."""

    def __init__(self, seed: int, tmp_path) -> None:
        self.seed = seed
        self.lock = threading.Lock()
        self.violations: list[str] = []
        self.kinds: set[str] = set()
        self.connector = ChaosConnector(
            tmp_path / "chaos.sqlite3", seed, self.violation, self.lent_to
        )
        self.pool = ConnectionPool(
            self.connector,
            name="chaos",
            pool_size=POOL_SIZE,
            max_overflow=MAX_OVERFLOW,
            timeout=LONG_TIMEOUT,
            recycle=0.3,
            pre_ping=True,
            pre_ping_bypass=0.1,
            overflow_idle_timeout=0.05,
            thread_affinity=True,
        )
        # record -> (borrowing thread, lease, abandoned): who may use the connection now.
        self.owners: dict[object, tuple[threading.Thread, int, bool]] = {}
        self.counts = dict.fromkeys(
            ("checkouts", "unparks", "parks", "timeouts", "connect_errors", "closed_errors",
             "abandoned", "orphaned"),
            0,
        )  # fmt: skip
        self.phase = 1
        self.started = self.stop_at = 0.0
        self.closing = threading.Event()  # set just before close() is called
        self.done = threading.Event()  # stops the monitor
        self.monitor_checks = 0
        self.failed = False

    # -- bookkeeping -----------------------------------------------------------------

    def violation(self, message: str) -> None:
        # The run has failed: stop it, and stop touching connections. (Two threads on
        # one sqlite3 connection, one of them closing it, can crash the interpreter.)
        self.failed = True
        self.stop_at = 0.0
        with self.lock:
            # Once per kind (the monitor would repeat itself every 2 ms).
            kind = message[:40]
            if kind not in self.kinds and len(self.violations) < MAX_VIOLATIONS:
                self.kinds.add(kind)
                self.violations.append(
                    f"[{threading.current_thread().name} +{time.monotonic() % 1000:.3f}] {message}"
                )

    def expect(self, condition: bool, message: str) -> None:
        if not condition:
            self.violation(message)

    def count(self, name: str) -> None:
        with self.lock:
            self.counts[name] += 1

    def acquire(self, record, lease: int, how: str) -> None:
        """The calling thread starts using ``record`` (lent by checkout or unpark)."""
        me = threading.current_thread()
        self.expect(lease != 0 and record.lease == lease, f"{how}: a record without its lease")
        self.expect(record.holder is me, f"{how}: a record whose holder is another thread")
        with self.lock:
            previous = self.owners.get(record)
            self.owners[record] = (me, lease, False)
        if previous is not None:
            thread, _, abandoned = previous
            # Only a connection left behind by a thread that has ended may be taken over.
            if not abandoned or thread.is_alive():
                self.violation(f"{how}: a connection lent while {thread.name} holds it")

    def release(self, record, lease: int) -> None:
        """The calling thread stops using ``record``: before it is given back, since the
        pool may lend it again before the return call even ends."""
        me = threading.current_thread()
        with self.lock:
            previous = self.owners.pop(record, None)
        if previous is None or previous[0] is not me or previous[1] != lease:
            self.violation("a held connection was taken over by another borrower")
        if record.lease != lease or record.holder is not me:
            self.violation("a held connection was lent again (its lease or holder changed)")

    def lent_to(self, connection) -> str | None:
        """The name of the borrower using ``connection`` now, if any."""
        with self.lock:
            for record, (thread, _, abandoned) in self.owners.items():
                if record.connection is connection and not abandoned:
                    return thread.name
        return None

    def abandon(self, record, lease: int) -> None:
        with self.lock:
            self.owners[record] = (threading.current_thread(), lease, True)

    # -- what borrowers do -----------------------------------------------------------

    def checkout(self, rng: random.Random):
        """A checkout with a short or a long timeout; (record, lease) or None."""
        short = rng.random() < 0.7
        timeout = rng.uniform(0.002, 0.05) if short else rng.uniform(0.3, LONG_TIMEOUT)
        started = time.monotonic()
        held = None
        try:
            record = self.pool.checkout(timeout=timeout)
        except PoolTimeoutError:
            self.count("timeouts")
            # (5 ms for the clock: Event.wait may wake a hair early)
            self.expect(
                time.monotonic() - started >= timeout - 0.005,
                f"a PoolTimeoutError before the timeout ({timeout:.3f}s)",
            )
        except ChaosConnectError:
            self.count("connect_errors")
        except PoolClosedError:
            self.count("closed_errors")
            self.expect(self.closing.is_set(), "PoolClosedError from an open pool")
        except Exception:
            self.violation(f"checkout raised:\n{traceback.format_exc()}")
        else:
            held = (record, record.lease)
            self.acquire(record, record.lease, "checkout")
            self.count("checkouts")
        elapsed = time.monotonic() - started
        self.expect(
            elapsed <= timeout + SLACK,
            f"a checkout with timeout {timeout:.3f}s took {elapsed:.3f}s",
        )
        return held

    def hold(self, rng: random.Random, held, sticky: bool = False) -> None:
        # More transactions left open in the close phase: their returns are slow (the
        # reset's ROLLBACK).
        in_transaction = not sticky and rng.random() < (0.3 if self.phase == 1 else 0.6)
        try:
            if not self.failed:
                connection = held[0].connection
                connection.execute("SELECT 1").fetchone()
                if in_transaction:
                    connection.execute("BEGIN")
                    connection.execute("SELECT 1").fetchone()
        except sqlite3.Error as error:
            self.violation(f"a lent connection was unusable: {error!r}")
        roll = rng.random()
        if roll < 0.7:
            time.sleep(rng.uniform(0, 0.003))
        elif roll < 0.95:
            time.sleep(rng.uniform(0.005, 0.02))
        else:
            time.sleep(rng.uniform(0.03, 0.08))

    def give_back(self, rng: random.Random, held, sticky: bool = False):
        """Return ``held`` one way or another; (record, lease) if it was parked."""
        pool = self.pool
        record, lease = held
        roll = 0.0 if sticky and rng.random() < 0.8 else rng.random()
        if roll < 0.35:
            self.release(record, lease)
            if pool.park(record, lease):
                self.count("parks")
                return held
            self.acquire(record, lease, "park refused")  # still ours: check it in
            self.release(record, lease)
            pool.checkin(record, lease)
        elif roll < 0.39:
            self.release(record, lease)
            pool.checkin(record, lease, discard_reason="error")
        elif roll < 0.40:
            # What the Django backend does on a disconnect error.
            record.invalidate("disconnect")
            pool.invalidate_older_connections()
            self.release(record, lease)
            pool.checkin(record, lease)
        elif roll < 0.41:
            # Its server ends the session: the next borrower's pre-ping must notice.
            self.connector.kill(record.connection)
            self.release(record, lease)
            pool.checkin(record, lease)
        elif roll < 0.425:
            record.connection.close()  # behind the pool's back: its reset fails
            self.release(record, lease)
            pool.checkin(record, lease)
        elif roll < 0.445:
            # A collected wrapper's finalizer: the housekeeper or a waiter returns it.
            self.release(record, lease)
            pool.return_later(record, lease)
            self.count("orphaned")
        else:
            self.release(record, lease)
            pool.checkin(record, lease)
        return None

    def request_in_thread(self, rng: random.Random) -> None:
        """One request in a thread of its own (Django under ASGI), which may end holding
        its connection or with it parked."""
        thread = threading.Thread(
            target=self.request, args=(random.Random(rng.random()),), name="chaos-request"
        )
        thread.start()
        thread.join(JOIN_BOUND)
        self.expect(not thread.is_alive(), "a request thread hung")

    def request(self, rng: random.Random) -> None:
        held = self.checkout(rng)
        if held is None:
            return
        self.hold(rng, held)
        roll = rng.random()
        if roll < 0.4:
            self.abandon(*held)
            self.count("abandoned")
        elif roll < 0.7:
            record, lease = held
            self.release(record, lease)
            if self.pool.park(record, lease):
                self.count("parks")  # and the thread ends with it parked
            else:
                self.acquire(record, lease, "park refused")
                self.release(record, lease)
                self.pool.checkin(record, lease)
        else:
            self.give_back(rng, held)

    def worker(self, number: int) -> None:
        rng = random.Random(self.seed * 1000 + self.phase * 100 + number)
        pool = self.pool
        mine = None  # (record, lease) parked by this thread
        # A fifth of the workers are web-worker-like: no transactions left open, and
        # they park whenever they can, so unparks race with others taking the connection.
        sticky = number % 5 == 0
        try:
            while time.monotonic() < self.stop_at:
                # Else the next request at once. (In the close phase, keep the parking
                # across the pause: close() must find parked connections to close.)
                if mine is None or rng.random() < 0.5 or self.phase == 2:
                    self.think(rng, sticky)
                if self.closing.is_set() and rng.random() < 0.4:
                    break  # and maybe end with a connection parked when close() came
                if rng.random() < 0.06:
                    self.request_in_thread(rng)
                    continue
                held = None
                if mine is not None:
                    record, lease = mine
                    mine = None
                    if rng.random() < 0.1:
                        # Returned by its lease while parked (what the housekeeper does
                        # with a collected wrapper's parked connection).
                        pool.checkin(record, lease)
                        continue
                    if pool.unpark(record, lease):
                        self.acquire(record, lease, "unpark")
                        self.count("unparks")
                        held = (record, lease)
                if held is None:
                    held = self.checkout(rng)
                    if held is None:
                        if self.closing.is_set():
                            break
                        continue
                self.hold(rng, held, sticky)
                mine = self.give_back(rng, held, sticky)
            # Else the thread ends with it parked: taken by others, or idled by the
            # housekeeper; closed by close() in the close phase.
            if mine is not None and rng.random() < (0.5 if self.phase == 1 else 0.2):
                pool.checkin(*mine)
        except Exception:
            self.violation(f"a borrower failed:\n{traceback.format_exc()}")

    def think(self, rng: random.Random, sticky: bool) -> None:
        """Wait for the next request: briefly in a storm (more borrowers than
        connections: queues, timeouts, overflow), longer in the calm between storms
        (parking, overflow connections idling out, connections living to expire)."""
        storm = int((time.monotonic() - self.started) / STORM_PERIOD) % 2 == 0
        if storm:
            time.sleep(rng.uniform(0, 0.004))
        elif self.phase == 2 and not sticky:
            # Traffic dropping before a shutdown: below the limit, parked connections
            # stay parked (at the limit, others take them within milliseconds).
            time.sleep(rng.uniform(0.03, 0.15))
        else:
            time.sleep(rng.uniform(0.005, 0.06))

    def housekeeper(self, stop: threading.Event) -> None:
        rng = random.Random(self.seed)
        while not stop.wait(rng.uniform(0.01, 0.04)):
            try:
                self.pool.maintain()
            except Exception:
                self.violation(f"maintain() failed:\n{traceback.format_exc()}")

    # -- checks ----------------------------------------------------------------------

    def monitor(self) -> None:
        while not self.done.wait(0.002):
            try:
                self.check_now()
            except Exception:
                self.violation(f"the monitor failed:\n{traceback.format_exc()}")

    def check_now(self) -> None:
        pool, connector = self.pool, self.connector
        self.monitor_checks += 1
        # White-box: the engine's own bookkeeping, read under its lock, and the
        # connector's count at the same instant. (Holders pop parked connections
        # without the lock, hence the retry.)
        with pool._lock:
            while True:
                try:
                    parked = tuple(pool._parked.values())
                    break
                except RuntimeError:
                    continue
            closed = pool._closed
            total = pool._total
            idle = list(pool._idle)
            out = set(pool._out)
            idle_leases = [record.lease for record in idle]
            with connector.lock:
                live = connector.live
        self.expect(0 <= total <= LIMIT, f"the pool counts {total} connections (limit {LIMIT})")
        # A slot is reserved before the connect and freed after the close. (close()
        # forgets the idle connections before closing them: no new slot is taken then.)
        self.expect(
            closed or live <= total,
            f"{live} connections open or opening but only {total} counted",
        )
        self.expect(len(set(map(id, idle))) == len(idle), "a connection twice in the idle stack")
        self.expect(not out.intersection(idle), "a connection both idle and lent")
        self.expect(not any(idle_leases), "an idle connection with a lease")
        self.expect(out.issuperset(parked), "a parked connection not counted as lent")
        stats = pool.get_stats()
        self.expect(
            stats["checked_out"] + stats["idle_connections"] <= stats["total"] <= LIMIT,
            f"inconsistent gauges: {stats}",
        )

    def settle(self, until) -> None:
        """Wait (bounded) until ``until()`` is true: opener threads may still be in a
        connect for waiters that gave up."""
        deadline = time.monotonic() + SETTLE_BOUND
        while not until() and time.monotonic() < deadline:
            time.sleep(0.005)

    def run_workers(self, seconds: float, during=None) -> None:
        self.started = time.monotonic()
        self.stop_at = self.started + seconds
        stop_housekeeper = threading.Event()
        threads = [
            threading.Thread(target=self.worker, args=(n,), name=f"chaos-{self.phase}-{n}")
            for n in range(WORKERS)
        ]
        threads.append(threading.Thread(target=self.housekeeper, args=(stop_housekeeper,)))
        for thread in threads:
            thread.start()
        if during is not None:
            during()
        deadline = self.stop_at + JOIN_BOUND
        for thread in threads[:-1]:
            thread.join(max(0.0, deadline - time.monotonic()))
            self.expect(not thread.is_alive(), f"{thread.name} hung (did not join)")
        stop_housekeeper.set()
        threads[-1].join(JOIN_BOUND)
        self.expect(not threads[-1].is_alive(), "the housekeeper hung")

    def check_quiescent(self) -> None:
        """Everybody is done: the pool must be whole and its numbers must add up."""
        pool, connector = self.pool, self.connector
        self.settle(lambda: connector.connecting == 0 and pool._opening == 0)
        with self.lock:
            counts = dict(self.counts)
        # The chaos must have provoked what it is about, or it proves nothing.
        for what in ("checkouts", "timeouts", "parks", "abandoned"):
            self.expect(counts[what] > 0, f"no {what} happened")
        # What the housekeeper would do next: return orphans, reclaim the connections
        # of ended threads, idle those they left parked.
        pool.maintain()
        stats = pool.get_stats()
        with connector.lock:
            live, connects = connector.live, connector.connects
            failed, closes = connector.failed_connects, connector.closes
        with self.lock:
            counts = dict(self.counts)
            held = [owner for owner in self.owners.values() if not owner[2]]
        expect = self.expect
        expect(not held, f"borrowers still hold connections: {held}")
        expect(stats["checked_out"] == 0, f"checked_out at rest: {stats['checked_out']}")
        expect(stats["wait_queue"] == 0, f"wait_queue at rest: {stats['wait_queue']}")
        expect(
            stats["checkouts"] == stats["checkins"],
            f"checkouts {stats['checkouts']} != checkins {stats['checkins']}",
        )
        expect(
            stats["checkouts"] == counts["checkouts"] + counts["unparks"],
            f"checkouts {stats['checkouts']} but the borrowers got {counts['checkouts']} "
            f"+ {counts['unparks']} taken back",
        )
        expect(stats["thread_reuses"] == counts["unparks"], "thread_reuses != unparks")
        expect(
            stats["total"] == stats["idle_connections"] == live,
            f"total {stats['total']}, idle {stats['idle_connections']}, physically open {live}",
        )
        expect(stats["connections_created"] == connects, "connections_created != connects")
        expect(
            stats["connect_time_count"] == connects,
            f"{stats['connect_time_count']} connects timed, {connects} made",
        )
        expect(stats["connection_errors"] == failed, "connection_errors != failed connects")
        expect(stats["connections_closed"] == closes, "connections_closed != closes")
        expect(stats["timeouts"] == counts["timeouts"], "timeouts != PoolTimeoutErrors raised")
        expect(
            counts["abandoned"]
            <= stats["reclaimed_from_dead_threads"]
            <= counts["abandoned"] + counts["orphaned"],
            f"reclaimed {stats['reclaimed_from_dead_threads']}, abandoned "
            f"{counts['abandoned']} (+ up to {counts['orphaned']} orphans of ended threads)",
        )
        expect(
            stats["invalidated"] == sum(stats["invalidated_by_reason"].values()),
            "invalidated != the sum of its reasons",
        )

    def check_every_slot_usable(self) -> None:
        """No slot was lost: the whole limit can be had at once, and not one more."""
        pool = self.pool
        fail_rate, self.connector.fail_rate = self.connector.fail_rate, 0.0
        held = []
        try:
            for _ in range(LIMIT):
                record = pool.checkout(timeout=SLACK)
                self.acquire(record, record.lease, "the final checkout")
                held.append((record, record.lease))
            with pytest.raises(PoolTimeoutError):
                pool.checkout(timeout=0.05)
        except BaseException as error:
            self.violation(f"could not check out the whole limit: {error!r}")
        for record, lease in held:
            self.release(record, lease)
            pool.checkin(record, lease)
        self.connector.fail_rate = fail_rate

    def close_at_random(self) -> None:
        time.sleep(random.Random(self.seed).uniform(0.22, CLOSE_PHASE_SECONDS - 0.08))
        self.closing.set()
        self.pool.close()

    def check_closed(self) -> None:
        pool, connector = self.pool, self.connector
        # The housekeeper still returns a closed pool's orphans and closes what threads
        # that ended since close() held.
        pool.maintain()
        self.settle(lambda: connector.live == 0)
        stats = pool.get_stats()
        with connector.lock:
            live, connects, closes = connector.live, connector.connects, connector.closes
        expect = self.expect
        expect(live == 0, f"{live} connections still open after close()")
        expect(connects == closes, f"{connects} connections opened, {closes} closed")
        expect(stats["total"] == 0, f"total {stats['total']} after close()")
        expect(stats["checked_out"] == 0, f"checked_out {stats['checked_out']} after close()")
        expect(stats["idle_connections"] == 0, "idle connections after close()")
        expect(
            stats["checkouts"] == stats["checkins"],
            f"checkouts {stats['checkouts']} != checkins {stats['checkins']} after close()",
        )
        expect(stats["connections_closed"] == closes, "connections_closed != closes")
        try:
            pool.checkout(timeout=0.05)
        except PoolClosedError:
            pass
        except BaseException as error:
            self.violation(f"a checkout from the closed pool raised {error!r}")
        else:
            self.violation("a checkout from the closed pool succeeded")

    def report(self, where: str) -> None:
        with self.lock:
            violations = list(self.violations)
        assert not violations, (
            f"chaos seed {self.seed}, {where}: {len(violations)} violation(s) "
            f"(rerun with -k {self.seed}):\n" + "\n".join(violations)
        )


@pytest.fixture
def fast_thread_switching():
    # Switch threads every 0.1 ms instead of 5 ms: many more interleavings per second.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0001)
    yield
    sys.setswitchinterval(interval)


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed={seed}" for seed in SEEDS])
def test_chaos(seed, tmp_path, fast_thread_switching, caplog):
    print(f"chaos seed {seed} (rerun with -k {seed})")
    # Hundreds of timeout and reclaim warnings: expected here, and they would bury the
    # violations in a failure's report.
    caplog.set_level(logging.ERROR, logger="django_dataflow.pool")
    chaos = Chaos(seed, tmp_path)
    monitor = threading.Thread(target=chaos.monitor, name="chaos-monitor")
    monitor.start()
    try:
        chaos.run_workers(CHAOS_SECONDS)
        chaos.check_quiescent()
        chaos.report("at rest after the chaos")
        chaos.check_every_slot_usable()
        chaos.report("checking out the whole limit")

        # close() racing with returns, parks, unparks and connects.
        chaos.phase = 2
        # Slower ROLLBACKs: more returns are under way (reset outside the pool's lock)
        # when close() comes.
        chaos.connector.rollback_seconds = (0.002, 0.012)
        chaos.run_workers(CLOSE_PHASE_SECONDS, during=chaos.close_at_random)
        chaos.check_closed()
    finally:
        chaos.done.set()
        monitor.join(JOIN_BOUND)
        chaos.pool.close()
    chaos.expect(not monitor.is_alive(), "the monitor hung")
    chaos.expect(chaos.connector.peak <= LIMIT, f"peak {chaos.connector.peak} connections")
    chaos.report("after close()")
    print(f"chaos seed {seed}: {chaos.counts}, {chaos.monitor_checks} monitor checks")
