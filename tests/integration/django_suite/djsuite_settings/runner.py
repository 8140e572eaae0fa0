"""A DiscoverRunner that also writes every test outcome to a JSON-lines file.

run.py compares these records between engines instead of scraping the ``-v 2`` text, whose
lines break when a test has a docstring. In parallel runs each worker writes its own
records: the parent's replay of worker events maps them to tests by position, which goes
wrong on Python 3.12+ when a whole class is skipped (the printed names shift). The file
(DJSUITE_RESULTS, appended to with one write per line) gets:

    {"kind": "test", "id": ..., "outcome": "ok|fail|error|skip|xfail|xpass", "detail": ...}
    {"kind": "ran", "tests_run": N}     after the suite ran, before the databases are torn down
    {"kind": "done"}                     after teardown: a run without it crashed

One test of Django's suite depends on the order the parallel runner happens to pick, for
every engine (seen failing in 1 run of 6 with Django's stock SQLite backend):
``backends.sqlite.tests.ThreadSharing.test_database_sharing_in_threads`` reads the main
thread's connection, then closes every connection its threads used that is not that one.
When the test starts with no connection open (an earlier test of the same worker closed
it), it closes the main thread's own connection, and every later test of that worker fails
with "Cannot operate on a closed database". The runner opens the connection before that
test, for both engines, which is the state the test assumes.
"""

from __future__ import annotations

import json
import os
import unittest

from django.test.runner import DiscoverRunner, ParallelTestSuite, RemoteTestResult, RemoteTestRunner

# Tests that assume the main thread's default connection is open when they start.
NEEDS_AN_OPEN_CONNECTION = frozenset(
    {"backends.sqlite.tests.ThreadSharing.test_database_sharing_in_threads"}
)


def _record(entry: dict) -> None:
    path = os.environ.get("DJSUITE_RESULTS")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as stream:
        stream.write(json.dumps(entry) + "\n")


class RecordingMixin:
    """Records each outcome after the result class it is mixed into has handled it."""

    recording = True

    def startTest(self, test):
        if test.id() in NEEDS_AN_OPEN_CONNECTION:
            from django.db import connections

            connections["default"].ensure_connection()
        super().startTest(test)

    def _test(self, test, outcome: str, detail: str = "") -> None:
        if self.recording:
            _record({"kind": "test", "id": test.id(), "outcome": outcome, "detail": detail})

    def _trace(self, err, test) -> str:
        return unittest.TestResult._exc_info_to_string(self, err, test) if err else ""

    def addSuccess(self, test):
        super().addSuccess(test)
        self._test(test, "ok")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._test(test, "fail", self._trace(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        self._test(test, "error", self._trace(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._test(test, "skip", str(reason))

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._test(test, "xfail")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._test(test, "xpass")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            failed = issubclass(err[0], test.failureException)
            self._test(subtest, "fail" if failed else "error", self._trace(err, test))


class RecordingResult(RecordingMixin, unittest.TextTestResult):
    """The parent's result: unittest's console output, recording only serial runs."""


class RecordingRemoteResult(RecordingMixin, RemoteTestResult):
    """A parallel worker's result: records the tests it really ran."""


class RecordingRemoteRunner(RemoteTestRunner):
    resultclass = RecordingRemoteResult


class RecordingParallelSuite(ParallelTestSuite):
    runner_class = RecordingRemoteRunner


class RecordingRunner(DiscoverRunner):
    """Django's runner with recording results and start/end markers in the records file."""

    parallel_test_suite = RecordingParallelSuite

    def get_resultclass(self):
        # --debug-sql and --pdb bring their own result classes; leave them alone.
        return super().get_resultclass() or RecordingResult

    def run_suite(self, suite, **kwargs):
        RecordingResult.recording = not isinstance(suite, ParallelTestSuite)
        result = super().run_suite(suite, **kwargs)
        _record({"kind": "ran", "tests_run": result.testsRun})
        return result

    def suite_result(self, suite, result, **kwargs):
        _record({"kind": "done"})
        return super().suite_result(suite, result, **kwargs)
