"""The ``perf`` gate: a Locust load test, one item per endpoint.

Collection time (every process, no load): the locustfile's literal requests
(``self.client.get("/api/products")``, ``name="/api/products/[id]"``) and the keys of
``endpoints`` become items named ``<METHOD> <name>``, preceded by the status item
``(locust run)`` and followed by ``(other endpoints)``, which judges what Locust
measured under names only known at run time.

Run time: the first item to run starts Locust headless once for the session (also under
xdist, through :meth:`RunDir.run_once`) after checking the target accepts connections;
every item reads its endpoint from the CSV statistics.  The HTML report is kept in
``<reports_dir>/<stage>/perf/<gate>.html`` and named by each item's ``perf_report``
JUnit property.  The status item fails whenever Locust did not measure a usable run
(not installed, locustfile missing or broken, target refused, crash, no request), so a
load test that did not run can never look green.

Configuration (``[tool.pytest-release.gates.<name>]`` with ``kind = "perf"``)::

    host = "http://127.0.0.1:18080"
    locustfile = "suites/perf/locustfile.py"
    users = 10
    spawn_rate = 10
    duration = "30s"
    error_rate_below = 0.01       # < 1 % failed requests
    p95_below_ms = 200            # p50_below_ms, p99_below_ms: unset by default
    min_requests = 20             # fewer: insufficient evidence, the item fails
    endpoints = { "GET /api/products" = { p95_below_ms = 300 } }
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_release.gates.gate_hooks import gate_kind_hooks
from pytest_release.gates.perf.config import (
    DEFAULT_LOCUSTFILES,
    KIND,
    OTHERS_NAME,
    STATUS_NAME,
    PerfGateConfig,
)
from pytest_release.gates.perf.items import PerfEndpointItem, PerfOthersItem, PerfStatusItem
from pytest_release.gates.perf.locustfile import Endpoint, LocustfileError, endpoints_in
from pytest_release.gates.perf.session_run import PerfRun
from pytest_release.gates.tool_command import resolve_path
from pytest_release.gating.gate_node import GateNode


def _items(gate_node: GateNode, gate: PerfGateConfig) -> list[pytest.Item]:
    run = gate_node.run
    locustfile, problem = _locustfile(gate, run.rootdir, gate_node.gate_name)
    found: list[Endpoint] = []
    if locustfile is not None:
        try:
            found = endpoints_in(locustfile)
        except LocustfileError as exc:
            problem = str(exc)
    keys = [e.key for e in found]
    for key in gate.endpoints:
        if key not in keys:
            method, name = key.split(" ", 1)
            found.append(Endpoint(method=method, name=name))
    runner = PerfRun(
        gate_name=gate_node.gate_name,
        gate=gate,
        rootdir=run.rootdir,
        locustfile=locustfile if problem is None else None,
        setup_problem=problem,
        report_dir=run.reports_dir / run.stage / "perf",
    )
    source = locustfile if locustfile is not None and locustfile.is_file() else None
    # The status item and the one for other endpoints judge the whole locustfile.
    whole_file = {"source_path": source, "source_line": 1 if source else None, "runner": runner}
    endpoints: list[pytest.Item] = [
        PerfEndpointItem.from_parent(
            gate_node,
            name=endpoint.key,
            source_path=source if endpoint.line else None,
            source_line=endpoint.line,
            runner=runner,
            endpoint=endpoint.key,
        )
        for endpoint in found
    ]
    return [
        PerfStatusItem.from_parent(gate_node, name=STATUS_NAME, **whole_file),
        *endpoints,
        PerfOthersItem.from_parent(
            gate_node, name=OTHERS_NAME, known=frozenset(e.key for e in found), **whole_file
        ),
    ]


pytest_release_gate_kinds, pytest_release_gate_items = gate_kind_hooks(KIND, PerfGateConfig, _items)


def _locustfile(
    gate: PerfGateConfig, rootdir: Path, gate_name: str
) -> tuple[Path | None, str | None]:
    where = f"[tool.pytest-release.gates.{gate_name}]"
    if gate.locustfile is not None:
        path = resolve_path(rootdir, gate.locustfile)
        if path.is_file():
            return path, None
        return None, (
            f"locustfile {gate.locustfile} does not exist under {rootdir} (locustfile in "
            f"{where}); fix the path or add the file"
        )
    for candidate in DEFAULT_LOCUSTFILES:
        path = rootdir / candidate
        if path.is_file():
            return path, None
    return None, (
        f"no locustfile: looked for {', '.join(DEFAULT_LOCUSTFILES)} under {rootdir}; add "
        f'one or set locustfile = "path/to/locustfile.py" in {where}'
    )
