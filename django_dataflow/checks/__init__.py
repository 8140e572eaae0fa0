"""System checks (``manage.py check``) with stable ids, one module per concern.

* ``pool``: every pooled DATABASES entry and the DATAFLOW_* settings;
* ``server``: what the database servers allow (tagged ``database``);
* ``routing``: ``DATAFLOW_ROUTING`` and the router.

Each module has a ``register_checks()``; ``AppConfig.ready()`` calls them. Every id is
documented in docs/checks.md.
"""
