"""Reading what Traefik applies (router.api_url) fails clearly when Traefik's API cannot
be read: a rollback then stops before deleting the canary (deleting a Service Traefik may
still route to would answer 404 on the whole route).  The applied state itself is read
from a real Traefik in tests/kubernetes_node/test_dead_stage.py."""

from __future__ import annotations

import pytest

from pytest_release.canary.routers.traefik.applied import applied_backends, wait_applied
from pytest_release.errors import RouterError
from tests.canary.canary_support import new_port


def test_an_unreachable_traefik_api_is_a_router_error_naming_the_setting() -> None:
    url = f"http://127.0.0.1:{new_port()}"  # nothing listens there
    with pytest.raises(RouterError) as unreadable:
        applied_backends(url, "shop-shop@kubernetescrd", timeout=2)
    message = str(unreadable.value)
    assert f"cannot read Traefik's API at {url}/api/http/services/shop-shop@kubernetescrd" in (
        message
    )
    assert "check router.api_url" in message
    with pytest.raises(RouterError):
        wait_applied(url, "shop-shop@kubernetescrd", {"shop-shop-80": 100}, timeout=1)
