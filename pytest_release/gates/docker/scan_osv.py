"""Advisories in the OSV format (https://ossf.github.io/osv-schema/) and matching them
against installed packages.

An OSV export is a directory of ``<id>.json`` files (searched recursively) or a zip of
them, as OSV publishes per ecosystem (``PyPI/all.zip``, ``Debian/all.zip``).  Each
advisory's ``affected[]`` names a package (ecosystem + name) with ``ranges[]`` of
``introduced`` / ``fixed`` / ``last_affected`` events and/or explicit ``versions[]``.

Version semantics follow the OSV specification: the events of a range are sorted by
version and walked in order; ``introduced`` at or below the installed version makes it
affected, a ``fixed`` at or below it (or a ``last_affected`` below it) unaffected again.
``ECOSYSTEM`` (and ``SEMVER``) ranges compare with the ecosystem's own rules:
:class:`packaging.version.Version` for PyPI (PEP 440), dpkg's ordering for Debian
(``debian.debian_support.Version``: epochs, ``~``, revisions).  ``GIT`` ranges cannot
be evaluated against an installed version and are ignored.  Withdrawn advisories are
skipped.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PYPI = "PyPI"
DEBIAN = "Debian"


class AdvisorySourceError(Exception):
    """The advisory source is missing or unreadable (the scan must fail, never pass)."""


@dataclass(frozen=True)
class Package:
    """An installed package: ``ecosystem`` is ``PyPI`` or ``Debian``; a Debian package
    is matched by its source package (OSV's Debian advisories name source packages)."""

    ecosystem: str
    name: str
    version: str
    binary: str = ""  # Debian: the binary package installed from the source ``name``

    @property
    def label(self) -> str:
        if self.binary and self.binary != self.name:
            return f"{self.binary} (source {self.name}) {self.version}"
        return f"{self.name} {self.version}"


@dataclass(frozen=True)
class Finding:
    advisory: str
    aliases: tuple[str, ...]
    package: Package
    fixed: str | None  # the first fixed version above the installed one; None: no fix
    summary: str

    def describe(self) -> str:
        fix = f"fixed in {self.fixed}" if self.fixed else "no fixed version"
        return f"{self.advisory}: {self.package.label} ({self.package.ecosystem}, {fix})" + (
            f" - {self.summary}" if self.summary else ""
        )


@dataclass(frozen=True)
class Advisories:
    """Advisories indexed by (ecosystem family, normalised package name)."""

    source: str
    count: int
    index: Mapping[tuple[str, str], tuple[Mapping[str, Any], ...]]

    def match(self, package: Package, debian_release: str | None = None) -> list[Finding]:
        key = (package.ecosystem, normalise(package.ecosystem, package.name))
        findings: list[Finding] = []
        for advisory in self.index.get(key, ()):
            for affected in advisory.get("affected") or ():
                if not _same_package(affected, package, debian_release):
                    continue
                hit, fixed = affects(affected, package)
                if hit:
                    findings.append(
                        Finding(
                            advisory=str(advisory["id"]),
                            aliases=tuple(str(a) for a in advisory.get("aliases") or ()),
                            package=package,
                            fixed=fixed,
                            summary=_summary(advisory),
                        )
                    )
                    break
        return findings


def normalise(ecosystem: str, name: str) -> str:
    if ecosystem == PYPI:
        return re.sub(r"[-_.]+", "-", name).lower()
    return name.lower()


def family(ecosystem: str) -> str:
    """``Debian:12`` -> ``Debian``; other ecosystems unchanged."""
    return ecosystem.split(":", 1)[0]


def load_advisories(path: Path) -> Advisories:
    """Every advisory of the OSV export at ``path`` (a directory or a zip)."""
    if not path.exists():
        raise AdvisorySourceError(f"the OSV advisory source {path} does not exist")
    index: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    count = 0
    for name, text in _documents(path):
        try:
            advisory = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AdvisorySourceError(f"{name} in {path} is not valid JSON: {exc}") from exc
        if not isinstance(advisory, dict) or not isinstance(advisory.get("id"), str):
            raise AdvisorySourceError(
                f"{name} in {path} is not an OSV advisory (a JSON object with an 'id')"
            )
        if advisory.get("withdrawn"):
            continue
        count += 1
        for affected in advisory.get("affected") or ():
            pkg = affected.get("package") or {}
            ecosystem, pkg_name = str(pkg.get("ecosystem", "")), str(pkg.get("name", ""))
            if not ecosystem or not pkg_name:
                continue
            key = (family(ecosystem), normalise(family(ecosystem), pkg_name))
            bucket = index.setdefault(key, [])
            if not bucket or bucket[-1] is not advisory:
                bucket.append(advisory)
    if count == 0:
        raise AdvisorySourceError(
            f"the OSV advisory source {path} holds no advisory (no *.json files); a scan "
            "against nothing would pass everything"
        )
    return Advisories(source=str(path), count=count, index={k: tuple(v) for k, v in index.items()})


def _documents(path: Path) -> Iterator[tuple[str, str]]:
    try:
        if path.is_dir():
            for file in sorted(path.rglob("*.json")):
                yield file.relative_to(path).as_posix(), file.read_text(encoding="utf-8")
            return
        if not zipfile.is_zipfile(path):
            raise AdvisorySourceError(
                f"the OSV advisory source {path} is neither a directory of OSV JSON files "
                "nor a zip of them"
            )
        with zipfile.ZipFile(path) as archive:
            for member in sorted(archive.namelist()):
                if member.endswith(".json"):
                    yield member, archive.read(member).decode("utf-8")
    except (OSError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
        raise AdvisorySourceError(f"cannot read the OSV advisory source {path}: {exc}") from exc


def _same_package(affected: Mapping[str, Any], package: Package, release: str | None) -> bool:
    pkg = affected.get("package") or {}
    ecosystem = str(pkg.get("ecosystem", ""))
    if family(ecosystem) != package.ecosystem:
        return False
    if normalise(package.ecosystem, str(pkg.get("name", ""))) != normalise(
        package.ecosystem, package.name
    ):
        return False
    if package.ecosystem == DEBIAN and ":" in ecosystem:
        return release is not None and ecosystem.split(":", 1)[1] == release
    return True


def affects(affected: Mapping[str, Any], package: Package) -> tuple[bool, str | None]:
    """Whether ``package``'s version is affected, and the first fixed version above it."""
    key = comparator(package.ecosystem)
    installed = key(package.version)
    fixes: list[str] = []
    hit = False
    for version in affected.get("versions") or ():
        try:
            if key(str(version)) == installed:
                hit = True
        except ValueError:
            continue
    for range_ in affected.get("ranges") or ():
        if range_.get("type") not in ("ECOSYSTEM", "SEMVER"):
            continue  # GIT ranges name commits, not installed versions
        events = list(_events(range_.get("events") or (), key))
        status = False
        for _, kind, value in sorted(events, key=lambda e: e[0]):
            parsed = key(value) if value != "0" else None
            if kind == "introduced" and (parsed is None or installed >= parsed):
                status = True
            elif parsed is not None and _ends(kind, installed, parsed):
                status = False
        if status:
            hit = True
            fixes += [
                value
                for _, kind, value in events
                if kind == "fixed" and value != "0" and key(value) > installed
            ]
    fixed = min(fixes, key=key) if fixes else None
    return hit, fixed


def _ends(kind: str, installed: Any, parsed: Any) -> bool:
    """Whether a ``fixed`` / ``last_affected`` event ends the affected span at ``installed``."""
    if kind == "fixed":
        return bool(installed >= parsed)
    return kind == "last_affected" and bool(installed > parsed)


def _events(
    events: Iterable[Mapping[str, Any]], key: Callable[[str], Any]
) -> Iterator[tuple[Any, str, str]]:
    """(sort key, kind, version) for the events a version comparison can use; an event
    whose version the ecosystem cannot parse is skipped."""
    for event in events:
        for kind in ("introduced", "fixed", "last_affected"):
            if kind in event:
                value = str(event[kind])
                try:
                    order = _Lowest() if value == "0" else key(value)
                except ValueError:
                    continue
                yield order, kind, value


class _Lowest:
    """Sorts before every version (OSV's ``introduced: "0"``)."""

    def __lt__(self, other: object) -> bool:
        return not isinstance(other, _Lowest)

    def __gt__(self, other: object) -> bool:
        return False


def comparator(ecosystem: str) -> Callable[[str], Any]:
    """A function turning a version string of ``ecosystem`` into something ordered;
    ValueError for a version the ecosystem cannot parse."""
    if ecosystem == PYPI:
        from packaging.version import InvalidVersion, Version

        def pypi(value: str) -> Any:
            try:
                return Version(value)
            except InvalidVersion as exc:
                raise ValueError(str(exc)) from exc

        return pypi
    if ecosystem == DEBIAN:
        from debian.debian_support import Version as DebianVersion

        def debian(value: str) -> Any:
            return _DebianKey(DebianVersion(value))

        return debian
    raise ValueError(f"unsupported ecosystem {ecosystem!r}")


@dataclass(frozen=True)
class _DebianKey:
    version: Any

    def _cmp(self, other: object) -> int:
        if isinstance(other, _Lowest):
            return 1
        assert isinstance(other, _DebianKey)
        from debian.debian_support import version_compare

        return int(version_compare(str(self.version), str(other.version)))

    def __lt__(self, other: object) -> bool:
        return self._cmp(other) < 0

    def __le__(self, other: object) -> bool:
        return self._cmp(other) <= 0

    def __gt__(self, other: object) -> bool:
        return self._cmp(other) > 0

    def __ge__(self, other: object) -> bool:
        return self._cmp(other) >= 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _DebianKey) and self._cmp(other) == 0

    def __hash__(self) -> int:
        return hash(str(self.version))


def _summary(advisory: Mapping[str, Any]) -> str:
    text = str(advisory.get("summary") or "").strip()
    if not text:
        details = str(advisory.get("details") or "").strip()
        text = details.splitlines()[0] if details else ""
    return text[:160]
