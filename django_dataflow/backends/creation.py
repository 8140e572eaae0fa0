"""Test-database creation that first closes the pools on the database concerned.

PostgreSQL refuses to drop a database, or to clone it as a template, while anything is
connected to it; SQLite's test database files are removed or copied. Idle pooled
connections would break all three, so pools on the database are closed first.
"""

from __future__ import annotations

from django_dataflow.pool import registry


def close_pools_on_database(name: str) -> int:
    """Close every pool of this process whose connections lead to database ``name``."""
    return registry.close_pools(lambda _key, pool: pool.target == str(name))


class PooledCreationMixin:
    def _create_test_db(self, verbosity, autoclobber, keepdb=False):
        close_pools_on_database(self._get_test_db_name())
        return super()._create_test_db(verbosity, autoclobber, keepdb)

    def _clone_test_db(self, suffix, verbosity, keepdb=False):
        close_pools_on_database(self.connection.settings_dict["NAME"])
        close_pools_on_database(self.get_test_db_clone_settings(suffix)["NAME"])
        return super()._clone_test_db(suffix, verbosity, keepdb)

    def _destroy_test_db(self, test_database_name, verbosity):
        close_pools_on_database(test_database_name)
        return super()._destroy_test_db(test_database_name, verbosity)
