"""Fixtures shared by the fault catalogue: real newman and a real HTTP API on 127.0.0.1,
and the canary tests' project dir whose local platform is torn down afterwards."""

from tests.canary.canary_support import canary_root  # noqa: F401
from tests.test_gate_newman import api, newman_bin  # noqa: F401
