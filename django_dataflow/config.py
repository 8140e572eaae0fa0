"""The public path of ``DataFlowConfig`` and the sizing helpers (``settings/`` holds them)."""

from django_dataflow.settings.dataflow_config import DataFlowConfig  # noqa: F401
from django_dataflow.settings.sizing import get_pool_config, recommended_pool_size  # noqa: F401
