"""Simulated requests in threads, as a threaded WSGI server makes them.

A request is framed by Django's ``request_started`` and ``request_finished`` signals
(so its connection is checked out at its first query and returned at its end, exactly
as under gunicorn) and writes the ledger (``record_request``). ``Load`` runs many
client threads issuing such requests until told to stop, and keeps every outcome with
its timing.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from django.core.signals import request_finished, request_started
from django.db import connections

from tests.integration.reliability.counterapp.ledger import record_request


@dataclass
class Outcome:
    request_id: str
    client: int
    started: float  # time.monotonic()
    finished: float = 0.0
    session: int | None = None  # the server's id of the session used
    error: BaseException | None = None
    in_doubt: bool = False  # the error came from the COMMIT: applied or not, unknown

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def duration(self) -> float:
        return self.finished - self.started

    @property
    def error_text(self) -> str:
        if self.error is None:
            return ""
        first_line = (str(self.error).strip().splitlines() or [""])[0]
        return f"{type(self.error).__name__}: {first_line}"


def run_request(
    counter: str, using: str, request_id: str, client: int = 0, hold: float = 0.0
) -> Outcome:
    """One request: count it in the ledger, keep the connection ``hold`` seconds more."""
    outcome = Outcome(request_id, client, time.monotonic())
    progress: dict[str, str] = {}
    request_started.send(sender=None)
    try:
        outcome.session = record_request(counter, request_id, using, progress)
        if hold:
            time.sleep(hold)
    except Exception as error:  # the outcome says what the client saw
        outcome.error = error
        outcome.in_doubt = progress.get("stage") == "commit"
    finally:
        request_finished.send(sender=None)
        outcome.finished = time.monotonic()
    return outcome


@dataclass
class Load:
    """``clients`` threads issuing requests back to back (``pause`` seconds apart)."""

    counter: str
    using: str
    clients: int
    pause: float = 0.005
    hold: float = 0.0
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._client, args=(number,), name=f"client-{number}")
            for number in range(self.clients)
        ]

    def _client(self, number: int) -> None:
        try:
            while not self._stop.is_set():
                request_id = f"{self.counter}:{next(self._ids)}"
                outcome = run_request(self.counter, self.using, request_id, number, self.hold)
                with self._lock:
                    self.outcomes.append(outcome)
                time.sleep(self.pause)
        finally:
            connections.close_all()

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [thread.name for thread in self._threads if thread.is_alive()]
        assert not stuck, f"client threads still running after {timeout}s: {stuck}"

    def succeeded(self) -> list[str]:
        return [outcome.request_id for outcome in self.outcomes if outcome.ok]

    def in_doubt(self) -> list[str]:
        """Requests whose COMMIT failed: the server may have carried them out."""
        return [outcome.request_id for outcome in self.outcomes if outcome.in_doubt]


def error_kinds(outcomes: list[Outcome]) -> dict[str, int]:
    """How many failed requests saw each kind of error (type and first line)."""
    return dict(Counter(outcome.error_text for outcome in outcomes if not outcome.ok))


def wait_until(condition, timeout: float, interval: float = 0.02) -> float:
    """Seconds until ``condition()`` was true; AssertionError after ``timeout``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
    return time.monotonic() - started
