"""The local-process platform's dead man's switch: tell the replica supervisor which
rollout stage's lease to watch (see :mod:`.supervisor`).

Each rollout stage writes ``<state_dir>/supervisor/lease-watch.json`` when it starts:
its lease file and the HAProxy router's state.  A stage that ends removes its lease, so
the supervisor only acts on a lease that is still there after it expired.  The
``local-docker`` type has no supervisor, hence no switch.
"""

from __future__ import annotations

from pathlib import Path

from pytest_release.canary.platforms.local.config import LocalPlatformConfig
from pytest_release.canary.platforms.local.supervisor import WATCH_FILE
from pytest_release.system.atomic import write_json_atomic


def watch_lease(config: LocalPlatformConfig, rootdir: Path, lease: Path) -> Path | None:
    """The watch file written for ``lease``, or None where no supervisor runs."""
    if config.type != "local-process":
        return None
    state_dir = Path(config.state_dir)
    state_dir = state_dir if state_dir.is_absolute() else rootdir / state_dir
    path = state_dir / "supervisor" / WATCH_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        path,
        {"lease": str(lease), "router_state": str(state_dir / "haproxy" / "router.json")},
    )
    return path
