"""The docker gate's vulnerability scan (``scan = { osv = ..., allow = [...] }``).

Two items, added after the image checks when ``scan`` is configured:

``vulnerability-scan``
    the scan itself ran: the advisory source was read (an OSV export, or Trivy when
    ``trivy`` is on PATH), the image's packages were listed.  A missing or unreadable
    advisory source, an image that cannot be listed, a Trivy error: it fails with the
    reason, never passes silently.
``vulnerabilities``
    every finding (package, installed version, advisory id, first fixed version) that is
    not allowed fails it; an allowance (``allow``: id or alias, reason, expiry date)
    turns its finding into a pass showing the reason, until the day after ``expires``,
    when the finding fails again with "allowance expired".

Findings are lines of the ``vulnerabilities`` item (and JUnit properties
``vulnerability`` / ``vulnerability_allowed``), not items of their own: pytest collects
items before the image they would describe has been built.

The scan runs once per session, also under xdist (:meth:`RunDir.run_once`).
"""

from __future__ import annotations

import datetime
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_release.errors import GateCheckFailed
from pytest_release.gates.docker.scan_config import AllowEntry, ScanConfig
from pytest_release.gates.docker.scan_osv import Finding, Package, normalise
from pytest_release.system.json_record import JsonRecord

if TYPE_CHECKING:
    from pytest_release.gates.docker.state import DockerGateState

SCAN_CHECKS = ("vulnerability-scan", "vulnerabilities")


@dataclass(frozen=True)
class ScanResult(JsonRecord):
    problem: str | None = None
    source: str = ""
    advisories: int = 0
    packages: int = 0
    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = ()


def scan_result(state: DockerGateState, gate_name: str) -> ScanResult:
    data = state.session.run_dir.run_once(
        f"docker-gate:{gate_name}:scan", lambda: _scan(state, gate_name).to_json()
    )
    return ScanResult.from_json(data)


def _scan(state: DockerGateState, gate_name: str) -> ScanResult:
    scan = state.gate(gate_name).scan
    assert scan is not None
    try:
        trivy = shutil.which("trivy") if scan.trivy else None
        if trivy is not None:
            return _trivy(state, gate_name, trivy, scan)
        return _osv(state, gate_name, scan)
    except Exception as exc:  # whatever went wrong, the scan must not pass
        return ScanResult(problem=f"the vulnerability scan failed: {type(exc).__name__}: {exc}")


def _image(state: DockerGateState, gate_name: str) -> tuple[str | None, str | None]:
    """(image id, None) or (None, why the image is not available)."""
    image = state.image(gate_name)
    if not image.ok:
        return None, f"the image {image.ref} is not available (see 'build'), nothing to scan"
    return image.image_id or image.ref, None


def _osv(state: DockerGateState, gate_name: str, scan: ScanConfig) -> ScanResult:
    from pytest_release.gates.docker.engine import DockerUnavailable
    from pytest_release.gates.docker.scan_image import ListingError, list_packages
    from pytest_release.gates.docker.scan_osv import (
        DEBIAN,
        PYPI,
        AdvisorySourceError,
        load_advisories,
    )

    path = Path(scan.osv).expanduser()
    path = path if path.is_absolute() else state.run.rootdir / path
    source = f"OSV export {state.run.relative(path)}"
    fix = (
        f"; fix scan.osv in [tool.pytest-release.gates.{gate_name}] or download the export "
        "(https://osv-vulnerabilities.storage.googleapis.com/<ecosystem>/all.zip)"
    )
    try:
        advisories = load_advisories(path)
    except AdvisorySourceError as exc:
        return ScanResult(problem=f"no advisories, so no scan: {exc}{fix}", source=source)
    image, missing = _image(state, gate_name)
    if image is None:
        return ScanResult(problem=missing, source=source, advisories=advisories.count)
    try:
        inventory = list_packages(
            state.client(),
            image,
            f"{state.container_name(gate_name)}-scan",
            state.labels(gate_name),
            timeout=scan.timeout,
        )
    except (ListingError, DockerUnavailable) as exc:
        return ScanResult(problem=str(exc), source=source, advisories=advisories.count)
    wanted = {PYPI} if scan.python else set()
    wanted |= {DEBIAN} if scan.debian else set()
    packages = [p for p in inventory.packages if p.ecosystem in wanted]
    findings = [f for p in packages for f in advisories.match(p, inventory.debian_release)]
    return ScanResult(
        source=source,
        advisories=advisories.count,
        packages=len(packages),
        findings=tuple(findings),
        notes=inventory.notes,
    )


def _trivy(state: DockerGateState, gate_name: str, binary: str, scan: ScanConfig) -> ScanResult:
    from pytest_release.gates.docker.scan_image import ListingError, run_trivy

    image, missing = _image(state, gate_name)
    if image is None:
        return ScanResult(problem=missing, source=f"Trivy ({binary})")
    try:
        found = run_trivy(binary, image, scan.timeout)
    except ListingError as exc:
        return ScanResult(problem=str(exc), source=f"Trivy ({binary})")
    findings = tuple(
        Finding(
            advisory=f.advisory,
            aliases=(),
            package=Package("trivy", f.package, f.version),
            fixed=f.fixed,
            summary=f.summary,
        )
        for f in found
    )
    return ScanResult(source=f"Trivy ({binary})", findings=findings)


# -- verdicts ------------------------------------------------------------------------------
def allowance(finding: Finding, allow: tuple[AllowEntry, ...]) -> tuple[AllowEntry | None, bool]:
    """The allowance covering ``finding`` (a valid one first) and whether it expired."""
    today = datetime.datetime.now(datetime.UTC).date()
    ids = {finding.advisory, *finding.aliases}
    names = {
        normalise(finding.package.ecosystem, n)
        for n in (finding.package.name, finding.package.binary)
        if n
    }
    matching = [
        entry
        for entry in allow
        if entry.id in ids
        and (entry.package is None or normalise(finding.package.ecosystem, entry.package) in names)
    ]
    valid = [entry for entry in matching if entry.expires >= today]
    if valid:
        return valid[0], False
    if matching:
        return max(matching, key=lambda e: e.expires), True
    return None, False


def check_scan(state: DockerGateState, gate_name: str, item: pytest.Item) -> None:
    """The ``vulnerability-scan`` item."""
    result = scan_result(state, gate_name)
    item.user_properties.append(("vulnerability_source", result.source))
    if result.problem is not None:
        raise GateCheckFailed(state.redact(result.problem))
    notes = "".join(f"\nnote: {note}" for note in result.notes)
    item.add_report_section(
        "call",
        "scan",
        f"{result.source}: {result.advisories} advisories; {result.packages} packages "
        f"scanned; {len(result.findings)} finding(s){notes}",
    )


def check_findings(state: DockerGateState, gate_name: str, item: pytest.Item) -> None:
    """The ``vulnerabilities`` item."""
    scan = state.gate(gate_name).scan
    assert scan is not None
    result = scan_result(state, gate_name)
    if result.problem is not None:
        pytest.skip("not scanned: the scan did not run (why: see 'vulnerability-scan')")
    failing: list[str] = []
    allowed: list[str] = []
    for finding in result.findings:
        entry, expired = allowance(finding, scan.allow)
        if entry is None:
            failing.append(finding.describe())
            item.user_properties.append(("vulnerability", finding.describe()))
        elif expired:
            line = (
                f"{finding.describe()}; the allowance expired on {entry.expires.isoformat()} "
                f"(reason was: {entry.reason}); renew it or fix the package"
            )
            failing.append(line)
            item.user_properties.append(("vulnerability", line))
        else:
            line = (
                f"{finding.describe()}; allowed until {entry.expires.isoformat()}: {entry.reason}"
            )
            allowed.append(line)
            item.user_properties.append(("vulnerability_allowed", line))
    allowed_text = "".join(f"\n  {line}" for line in allowed)
    if failing:
        listed = "".join(f"\n  {line}" for line in failing)
        raise GateCheckFailed(
            state.redact(
                f"the image has {len(failing)} vulnerable package(s) ({result.source}):{listed}"
                + (f"\nallowed:{allowed_text}" if allowed else "")
                + "\nUpgrade to the fixed version, or accept a finding with an allowance in "
                f"scan.allow of [tool.pytest-release.gates.{gate_name}] (id, reason, expires)"
            )
        )
    summary = f"no vulnerable package among {result.packages} ({result.source})"
    if allowed:
        summary = f"{len(allowed)} finding(s) allowed ({result.source}):{allowed_text}"
    item.add_report_section("call", "vulnerabilities", state.redact(summary))
