"""No password or secret in a config's repr or in a settings error: a password that
urlsplit takes for a port, and a metrics token of the wrong type.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_dataflow import DataFlowConfig, conf
from django_dataflow.settings.options import ConfigurationError

SECRET = "Zq9XvwKp7Wmq"


def test_config_repr_masks_a_password_that_starts_with_digits_and_holds_a_slash():
    # A password "2024/<secret>" written without percent-encoding. urlsplit takes "2024"
    # for a port, so the URL parses (HOST='u', PORT=2024, NAME='<secret>@h/db'), and
    # _mask's pattern (which stops at the first "/") leaves the password in the repr.
    url = f"postgres://u:2024/{SECRET}@db.internal/app"
    try:
        config = DataFlowConfig(database_url=url)
    except ConfigurationError as error:  # refusing the URL is fine, if it says nothing
        assert SECRET not in str(error)
        return
    assert SECRET not in repr(config), repr(config)


@pytest.mark.parametrize(
    "token", [b"Zq9XvwKp7Wmq-token", ["Zq9XvwKp7Wmq-token"]], ids=["bytes", "list"]
)
def test_a_metrics_token_of_the_wrong_type_is_not_echoed_in_the_error(token):
    # The error is raised on every request to the stats views and logged by
    # django.request with its message: the token must not be in it.
    with (
        override_settings(DATAFLOW_METRICS_TOKEN=token),
        pytest.raises(ImproperlyConfigured) as raised,
    ):
        conf.metrics_token()
    assert "Zq9XvwKp7Wmq" not in str(raised.value), str(raised.value)
