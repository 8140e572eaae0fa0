"""The guide's pool-sizing helpers: "Dynamic Pool Sizing" and "Size Pool Appropriately"."""

from __future__ import annotations

import os

from django_dataflow.settings.dataflow_config import DataFlowConfig

WORKLOAD_FACTORS = {"balanced": 1.0, "read_heavy": 1.5, "write_heavy": 0.75}
MINIMUM_POOL_SIZE = 10


def available_cpus() -> int:
    """CPUs this process may run on (a container's cpuset, not the host's count); 4 if
    unknown, as in the guide."""
    if hasattr(os, "process_cpu_count"):  # Python 3.13+
        return os.process_cpu_count() or 4
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 4
    return os.cpu_count() or 4


def recommended_pool_size(
    workload: str = "balanced", cpu_count: int | None = None, spindles: int = 1
) -> int:
    """The guide's pool size: ``cores * 2 + spindles``, x1.5 for read-heavy, x0.75 for
    write-heavy work, at least 10. ``cpu_count`` defaults to this process's CPUs;
    ``spindles`` is 1 for SSDs."""
    key = str(workload).strip().lower().replace("-", "_")
    if key not in WORKLOAD_FACTORS:
        raise ValueError(
            f"recommended_pool_size: workload must be one of "
            f"{', '.join(map(repr, WORKLOAD_FACTORS))}, not {workload!r}."
        )
    cores = available_cpus() if cpu_count is None else cpu_count
    for name, value, minimum in (("cpu_count", cores, 1), ("spindles", spindles, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(
                f"recommended_pool_size: {name} must be a whole number >= {minimum}, not {value!r}."
            )
    size = int((cores * 2 + spindles) * WORKLOAD_FACTORS[key])
    return max(size, MINIMUM_POOL_SIZE)


def get_pool_config(
    *,
    database_url: str | None = None,
    environment: str | None = None,
    cpu_count: int | None = None,
) -> DataFlowConfig:
    """The guide's ``get_pool_config()``: pools sized by the deployment environment.

    With ``environment`` (default: the ``ENVIRONMENT`` variable) "production": 4
    connections per CPU plus 6 per CPU of overflow, recycled every 30 minutes, pre-ping
    on. Otherwise a small pool: 5 + 10, recycled hourly.
    """
    if environment is None:
        environment = os.environ.get("ENVIRONMENT", "")
    cores = available_cpus() if cpu_count is None else cpu_count
    if environment == "production":
        return DataFlowConfig(
            database_url=database_url,
            pool_size=cores * 4,
            pool_max_overflow=cores * 6,
            pool_recycle=1800,
            pool_pre_ping=True,
        )
    return DataFlowConfig(
        database_url=database_url, pool_size=5, pool_max_overflow=10, pool_recycle=3600
    )
