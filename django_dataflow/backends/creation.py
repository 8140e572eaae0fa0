"""Test-database creation that first closes the pools on the database concerned.

PostgreSQL refuses to drop a database, or to clone it as a template, while anything is
connected to it; SQLite's test database files are removed or copied. Idle pooled
connections would break all three, so pools on the database are closed first. And the
steps that change a settings entry in place bump the settings epoch (``backends/parking.py``).
"""

from __future__ import annotations

from django_dataflow.backends import parking
from django_dataflow.pool import registry


def close_pools_on_database(name: str) -> int:
    """Close every pool of this process whose connections lead to database ``name``."""
    return registry.close_pools(lambda _key, pool: pool.target == str(name))


class PooledCreationMixin:
    # Each of these comes with a change of the settings entry in place: parked
    # connections of the old entry must not be taken back (the settings epoch in
    # backends/parking.py). (Not
    # create_test_db() / destroy_test_db() themselves: a wrapper would move the frame
    # that Django's deprecation warnings point at. The wrapper's next connect() after
    # the change bumps the epoch too.)
    def set_as_test_mirror(self, primary_settings_dict):
        super().set_as_test_mirror(primary_settings_dict)
        parking.bump_settings_epoch()

    def setup_worker_connection(self, _worker_id):
        parking.bump_settings_epoch()
        super().setup_worker_connection(_worker_id)

    def _create_test_db(self, verbosity, autoclobber, keepdb=False):
        close_pools_on_database(self._get_test_db_name())
        # PostgreSQL copies TEST["TEMPLATE"], and refuses while anyone is connected to it.
        template = self.connection.settings_dict.get("TEST", {}).get("TEMPLATE")
        if template:
            close_pools_on_database(template)
        try:
            return super()._create_test_db(verbosity, autoclobber, keepdb)
        finally:
            parking.bump_settings_epoch()

    def _clone_test_db(self, suffix, verbosity, keepdb=False):
        close_pools_on_database(self.connection.settings_dict["NAME"])
        close_pools_on_database(self.get_test_db_clone_settings(suffix)["NAME"])
        return super()._clone_test_db(suffix, verbosity, keepdb)

    def _destroy_test_db(self, test_database_name, verbosity):
        close_pools_on_database(test_database_name)
        try:
            return super()._destroy_test_db(test_database_name, verbosity)
        finally:
            parking.bump_settings_epoch()
