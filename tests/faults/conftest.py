"""Fixtures shared by the fault catalogue: real newman and a real HTTP API on 127.0.0.1."""

from tests.test_gate_newman import api, newman_bin  # noqa: F401
