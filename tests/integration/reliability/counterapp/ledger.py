"""Writing and checking the ledger.

``record_request`` is the body of every scenario request: in one transaction it
increments the scenario's counter and inserts a ``Hit`` with the request's id, and it
returns the server's id of the session that did it (to prove which process used which
connection). ``check_ledger`` compares what the database holds with what the clients saw.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connections, transaction
from django.db.models import F

from tests.integration.reliability.counterapp.models import Counter, Hit

SESSION_ID_SQL = {"postgresql": "SELECT pg_backend_pid()", "mysql": "SELECT CONNECTION_ID()"}


def reset_counter(name: str, using: str) -> None:
    """Start the scenario ``name`` from zero (and give the connection back: the
    calling thread must not hold one of the scenario's connections)."""
    with transaction.atomic(using=using):
        Hit.objects.using(using).filter(counter=name).delete()
        Counter.objects.using(using).update_or_create(name=name, defaults={"value": 0})
    connections[using].close()


def record_request(
    name: str, request_id: str, using: str, progress: dict[str, str] | None = None
) -> int:
    """Count one request; return the server session id of the connection used.

    ``progress["stage"]`` becomes ``"commit"`` once only the COMMIT is left: an error
    raised after that is the COMMIT's, whose outcome the client cannot know (the server
    may have committed and gone away before saying so).
    """
    progress = {} if progress is None else progress
    progress["stage"] = "body"
    with transaction.atomic(using=using):
        Counter.objects.using(using).filter(name=name).update(value=F("value") + 1)
        Hit.objects.using(using).create(request_id=request_id, counter=name)
        with connections[using].cursor() as cursor:
            cursor.execute(SESSION_ID_SQL[connections[using].vendor])
            session = int(cursor.fetchone()[0])
        progress["stage"] = "commit"
    return session


@dataclass
class Ledger:
    counter: int
    hits: set[str]
    applied_in_doubt: int = 0  # failed COMMITs the server had carried out after all


def read_ledger(name: str, using: str) -> Ledger:
    counter = Counter.objects.using(using).get(name=name).value
    hits = set(Hit.objects.using(using).filter(counter=name).values_list("request_id", flat=True))
    connections[using].close()
    return Ledger(counter, hits)


def check_ledger(
    name: str, using: str, succeeded: Iterable[str], in_doubt: Iterable[str] = ()
) -> Ledger:
    """Assert that the counter equals the successful requests: nothing lost, nothing
    applied twice, nothing applied that its client saw fail, except requests whose
    COMMIT failed (``in_doubt``: the server may have committed before it went away)."""
    return compare(read_ledger(name, using), succeeded, in_doubt)


def compare(ledger: Ledger, succeeded: Iterable[str], in_doubt: Iterable[str] = ()) -> Ledger:
    """``check_ledger`` for a ledger read some other way (another process's database)."""
    succeeded, in_doubt = set(succeeded), set(in_doubt)
    lost = succeeded - ledger.hits
    unexpected = ledger.hits - succeeded - in_doubt
    assert not lost, f"{len(lost)} successful requests are missing from the ledger"
    assert not unexpected, (
        f"{len(unexpected)} requests the clients saw fail were applied: {sorted(unexpected)[:5]}"
    )
    # Every hit counted once: the counter and the rows (unique request ids) agree.
    assert ledger.counter == len(ledger.hits), f"counter {ledger.counter}, hits {len(ledger.hits)}"
    ledger.applied_in_doubt = len(ledger.hits & in_doubt)
    return ledger
