"""django-dataflow: managed database connection pooling for Django.

Point a DATABASES entry at ``django_dataflow.backends.postgresql``, ``.mysql`` or
``.sqlite3`` and describe the pool in its ``"POOL"`` dict. See docs/ for the rest.
"""

from __future__ import annotations

from django_dataflow.errors import PoolClosed, PoolTimeout

__all__ = ["PoolClosed", "PoolTimeout"]
__version__ = "0.1.0.dev0"
