"""What is installed in an image: its Python distributions (``importlib.metadata``, read
by running the image's ``python3``) and Debian packages (``dpkg-query -W``), listed in
one short-lived container (no network) through the docker SDK; and Trivy's findings
when Trivy is used instead."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_release.gates.docker.scan_osv import DEBIAN, PYPI, Package

_MARK = "PYTEST-RELEASE-SCAN "
DPKG_FORMAT = (
    "${Package}\\t${Version}\\t${source:Package}\\t${source:Version}\\t${db:Status-Abbrev}\\n"
)
_LISTER = f"""
import json, subprocess, sys
out = {{"python": None, "dpkg": None, "os": "", "errors": []}}
try:
    import importlib.metadata as metadata
    out["python"] = sorted(
        [d.metadata.get("Name") or "", d.version] for d in metadata.distributions()
    )
except Exception as exc:
    out["errors"].append("importlib.metadata: %r" % (exc,))
try:
    out["dpkg"] = subprocess.run(
        ["dpkg-query", "-W", "-f={DPKG_FORMAT}"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout
except FileNotFoundError:
    pass
except Exception as exc:
    out["errors"].append("dpkg-query: %r" % (exc,))
try:
    with open("/etc/os-release") as handle:
        out["os"] = handle.read()
except OSError:
    pass
print("{_MARK}" + json.dumps(out))
"""


class ListingError(Exception):
    """The image's packages could not be listed."""


@dataclass(frozen=True)
class Inventory:
    packages: tuple[Package, ...]
    debian_release: str | None  # VERSION_ID of a Debian image
    notes: tuple[str, ...] = field(default=())


def list_packages(
    client: Any, image: str, name: str, labels: Mapping[str, str], timeout: float
) -> Inventory:
    """Run ``python3`` in ``image`` (no network, its own user) to list what it holds."""
    import docker

    try:
        container = client.containers.create(
            image,
            entrypoint=["python3", "-c", _LISTER],
            command=[],
            name=name,
            network_mode="none",
            labels=dict(labels),
        )
    except docker.errors.DockerException as exc:
        raise ListingError(f"could not create a container from {image}: {exc}") from exc
    try:
        try:
            container.start()
            result = container.wait(timeout=timeout)
        except docker.errors.DockerException as exc:
            raise ListingError(
                f"could not run python3 in {image} to list its packages ({exc}); the scan "
                "needs python3 in the image (use Trivy for images without Python)"
            ) from exc
        except Exception as exc:  # requests' ReadTimeout and friends
            raise ListingError(f"listing the packages of {image} did not finish: {exc}") from exc
        output = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
        errors = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
        code = result.get("StatusCode")
    finally:
        with contextlib.suppress(docker.errors.DockerException):
            container.remove(force=True)  # else labelled: the session's cleanup removes it
    line = next((ln for ln in output.splitlines() if ln.startswith(_MARK)), None)
    if code != 0 or line is None:
        raise ListingError(
            f"listing the packages of {image} with python3 failed (exit code {code}): "
            f"{(errors or output).strip()[-1500:]}"
        )
    return parse_listing(json.loads(line[len(_MARK) :]))


def parse_listing(data: Mapping[str, Any]) -> Inventory:
    packages: list[Package] = []
    notes = [str(e) for e in data.get("errors") or ()]
    for name, version in data.get("python") or ():
        if name:
            packages.append(Package(PYPI, str(name), str(version)))
    os_release = _os_release(str(data.get("os") or ""))
    debian_release = os_release.get("VERSION_ID") if os_release.get("ID") == "debian" else None
    dpkg = data.get("dpkg")
    if dpkg is None:
        notes.append("no dpkg in the image: no Debian packages scanned")
    for row in str(dpkg or "").splitlines():
        parts = row.split("\t")
        if len(parts) < 5 or not parts[4].startswith("ii"):
            continue  # not installed (removed, config files only)
        binary, version, source, source_version = parts[:4]
        packages.append(Package(DEBIAN, source or binary, source_version or version, binary))
    if dpkg and debian_release is None:
        notes.append(
            f"the image is not Debian (os-release ID={os_release.get('ID', '?')}): its dpkg "
            "packages are only matched against advisories without a release (ecosystem "
            "'Debian')"
        )
    return Inventory(tuple(packages), debian_release, tuple(notes))


def _os_release(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"')
    return values


@dataclass(frozen=True)
class TrivyFinding:
    advisory: str
    package: str
    version: str
    fixed: str | None
    summary: str


def run_trivy(binary: str, image: str, timeout: float) -> list[TrivyFinding]:
    """``trivy image --format json`` on the local image; ListingError when it fails."""
    argv = [binary, "image", "--quiet", "--format", "json", "--timeout", f"{int(timeout)}s", image]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout + 30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ListingError(f"running {' '.join(argv)} failed: {exc}") from exc
    if done.returncode != 0:
        raise ListingError(
            f"{' '.join(argv)} exited with {done.returncode}: {done.stderr.strip()[-1500:]}"
        )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise ListingError(f"Trivy's report is not JSON: {exc}") from exc
    findings: list[TrivyFinding] = []
    for result in report.get("Results") or ():
        for vuln in result.get("Vulnerabilities") or ():
            findings.append(
                TrivyFinding(
                    advisory=str(vuln.get("VulnerabilityID", "")),
                    package=str(vuln.get("PkgName", "")),
                    version=str(vuln.get("InstalledVersion", "")),
                    fixed=vuln.get("FixedVersion") or None,
                    summary=str(vuln.get("Title") or "")[:160],
                )
            )
    return findings
