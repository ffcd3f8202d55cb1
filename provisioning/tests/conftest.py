"""Servers some provisioning tests talk to: the session's gateway (the operators' health page
probes its `/readyz`) and Redis (the reconcile's heartbeat), from gateway/tests/conftest.py."""

from gateway.tests.conftest import (  # noqa: F401 - fixtures, by name
    control_plane_port,
    gateway_server,
    redis_server,
)
