"""The example project (example_project/demo/settings.py), served by gunicorn and
uvicorn in the web-server scenarios, with the ledger's app and two URLs added.

The database comes from DATABASE_URL, as for the example project itself. Needs
example_project/ on the Python path (it holds the ``demo`` and ``accounts`` packages).
"""

from demo.settings import *  # noqa: F403
from demo.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.integration.reliability.counterapp"]
ROOT_URLCONF = "tests.integration.reliability.web_urls"
# Publish pool statistics often, so pool_stats sees every worker soon after it starts.
DATAFLOW_STATS_INTERVAL = 0.5
