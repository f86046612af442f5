"""What Traefik itself applies, over time: a thread that polls Traefik's API for the
TraefikService the router manages and records every change with its timestamp.

Traefik's kubernetescrd provider builds a weighted TraefikService only when every Service
it names (weight 0 included) exists and (unless ``allowEmptyServices``, which the test node
sets: then that Service's share answers 503) has a serving endpoint; otherwise the whole
TraefikService is left out of the configuration and the route that uses it answers 404.
So the timeline says, for each lost request, what Traefik applied at that moment: the
weighted backends, or ``missing`` (the TraefikService was not built).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from types import TracebackType

from tests.kubernetes_node.cluster import NodeCluster


class TraefikTimeline:
    """Changes of Traefik's view of ``<namespace>-<name>@kubernetescrd``: (time, state)."""

    def __init__(self, cluster: NodeCluster, namespace: str, name: str = "shop") -> None:
        service = f"{namespace}-{name}@kubernetescrd"
        self.url = f"{cluster.host_traefik_api_url}/api/http/services/{service}"
        self.changes: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def state(self) -> str:
        """``weighted a=90 b=10 (enabled)``, ``missing (HTTP 404)`` or the error."""
        try:
            with urllib.request.urlopen(self.url, timeout=5) as response:
                service = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return f"missing (HTTP {exc.code})"
        except (OSError, ValueError) as exc:
            return f"unreadable ({exc!r})"
        backends = (service.get("weighted") or {}).get("services") or []
        weights = " ".join(f"{b.get('name')}={b.get('weight')}" for b in backends)
        return f"weighted {weights} ({service.get('status')})"

    def _poll(self) -> None:
        while not self._stop.is_set():
            state = self.state()
            if not self.changes or self.changes[-1][1] != state:
                self.changes.append((time.time(), state))
            self._stop.wait(0.05)

    def at(self, moment: float) -> str:
        """What Traefik applied at ``moment`` (as last seen before it)."""
        seen = [state for at, state in self.changes if at <= moment]
        return seen[-1] if seen else "(before the first poll)"

    def describe(self) -> str:
        start = self.changes[0][0] if self.changes else 0.0
        return "\n".join(f"  +{at - start:7.2f}s {state}" for at, state in self.changes)

    def __enter__(self) -> TraefikTimeline:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
