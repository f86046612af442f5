"""The docker gate's vulnerability scan: OSV version semantics (no daemon), then real
images built from ``local/python:bookworm`` and scanned through the real daemon against
the small OSV export in ``tests/data/osv`` (this machine reaches no advisory service).

The vulnerable image holds *fake installations*: only the ``.dist-info/METADATA`` of
urllib3 1.26.4 and Jinja2 3.1.2 (pip cannot download inside an image build here).  The
metadata is what ``importlib.metadata``, pip and every scanner read, so to the scan they
are installed."""

from __future__ import annotations

import datetime
import shutil
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_release.config.release import load_release_config
from pytest_release.errors import ReleaseConfigError
from pytest_release.gates import builtin_gate_kinds
from pytest_release.gates.docker.scan import allowance
from pytest_release.gates.docker.scan_config import AllowEntry
from pytest_release.gates.docker.scan_image import parse_listing
from pytest_release.gates.docker.scan_osv import (
    AdvisorySourceError,
    Finding,
    Package,
    affects,
    load_advisories,
)
from tests.support.junit import Case, cases_by_name, stage_report
from tests.support.spine import project, run_stage

DATA = Path(__file__).parent / "data"
OSV = DATA / "osv"
SERVICE = DATA / "docker"
RELEASE_LABEL = "pytest-release.release"


# -- OSV semantics (no daemon) -------------------------------------------------------------
def _pypi(name: str, version: str) -> Package:
    return Package("PyPI", name, version)


@pytest.mark.parametrize(
    ("name", "version", "expected"),
    [
        ("urllib3", "1.26.4", ["PYSEC-2021-59"]),
        ("urllib3", "1.26.5", []),  # fixed is not affected
        ("urllib3", "2.0.0", []),
        ("urllib3", "1.26.5rc1", ["PYSEC-2021-59"]),  # PEP 440: a pre-release sorts before
        ("URLLib3", "1.0", ["PYSEC-2021-59"]),  # names are normalised
        ("jinja2", "3.1.2", ["GHSA-h5c8-rqwp-cp95"]),  # listed as "Jinja2"
        ("Jinja2", "3.1.3", []),
        ("requests", "2.2.1", []),  # before introduced
        ("requests", "2.3.0", ["PYSEC-2023-74"]),
        ("requests", "2.30.99", ["PYSEC-2023-74"]),
        ("example-pkg", "0.9.1", ["GHSA-test-last-affected"]),  # only in versions[]
        ("example-pkg", "1.4.2", ["GHSA-test-last-affected"]),  # last_affected included
        ("example-pkg", "1.4.3", []),  # after last_affected
        ("example-pkg", "1.10", []),  # 1.10 > 1.4.2 as versions, not as strings
        ("example-pkg", "2.0.0rc1", ["GHSA-test-last-affected"]),  # second range
        ("example-pkg", "2.1", []),
    ],
)
def test_pypi_ranges_follow_osv_semantics(name: str, version: str, expected: list[str]) -> None:
    advisories = load_advisories(OSV)
    assert [f.advisory for f in advisories.match(_pypi(name, version))] == expected


def test_fixed_version_reported_and_withdrawn_advisories_skipped() -> None:
    advisories = load_advisories(OSV)
    assert advisories.count == 5  # 6 files, one withdrawn
    [finding] = advisories.match(_pypi("urllib3", "1.26.4"))
    assert finding.fixed == "1.26.5"
    assert finding.aliases == ("CVE-2021-33503", "GHSA-q2q7-5pp4-w6pg")
    assert finding.describe().startswith(
        "PYSEC-2021-59: urllib3 1.26.4 (PyPI, fixed in 1.26.5) - Catastrophic backtracking"
    )


@pytest.mark.parametrize(
    ("version", "release", "affected"),
    [
        ("1:1.2.13.dfsg-1", "12", False),  # bookworm's zlib: newer than the Debian 12 fix
        ("1:1.2.11.dfsg-4", "12", True),  # older than 1:1.2.11.dfsg-4.1
        ("1.2.99", "12", True),  # no epoch: lower than any epoch 1 version
        ("1:1.2.11.dfsg-2+deb11u1", "11", True),
        ("1:1.2.11.dfsg-2+deb11u2", "11", False),
        ("1:1.2.11.dfsg-2+deb11u1", None, False),  # not a Debian image: Debian:11 skipped
        ("1:1.2.11.dfsg-2+deb11u1", "10", False),
    ],
)
def test_debian_versions_compare_like_dpkg(
    version: str, release: str | None, affected: bool
) -> None:
    package = Package("Debian", "zlib", version, binary="zlib1g")
    findings = load_advisories(OSV).match(package, release)
    assert [f.advisory for f in findings] == (["DSA-5218-1"] if affected else [])


def test_zip_export_and_versions_list_without_fix(tmp_path: Path) -> None:
    export = tmp_path / "all.zip"
    with zipfile.ZipFile(export, "w") as archive:
        for file in (DATA / "osv-debian").glob("*.json"):
            archive.write(file, file.name)
    package = Package("Debian", "zlib", "1:1.2.13.dfsg-1", binary="zlib1g")
    [finding] = load_advisories(export).match(package, "12")
    assert finding.advisory == "DEBIAN-CVE-2023-45853"
    assert finding.fixed is None
    assert "zlib1g (source zlib) 1:1.2.13.dfsg-1 (Debian, no fixed version)" in finding.describe()


def test_semantics_of_a_bare_range() -> None:
    affected = {
        "package": {"ecosystem": "PyPI", "name": "x"},
        "ranges": [{"type": "ECOSYSTEM", "events": [{"fixed": "2.0"}, {"introduced": "1.0"}]}],
    }
    assert affects(affected, _pypi("x", "1.5")) == (True, "2.0")  # events are sorted
    assert affects(affected, _pypi("x", "0.5")) == (False, None)
    git_only = {"ranges": [{"type": "GIT", "events": [{"introduced": "0"}]}]}
    assert affects(git_only, _pypi("x", "1.0")) == (False, None)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("{not json", "is not valid JSON"),
        ('["a list"]', "is not an OSV advisory"),
        ("", "holds no advisory"),
    ],
)
def test_unreadable_advisory_source_is_an_error(
    tmp_path: Path, content: str | None, message: str
) -> None:
    source = tmp_path / "osv"
    if content is not None:
        source.mkdir()
        if content:
            (source / "A-1.json").write_text(content)
    with pytest.raises(AdvisorySourceError, match=message):
        load_advisories(source)


def test_a_file_that_is_no_zip_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "all.zip").write_text("not a zip")
    with pytest.raises(AdvisorySourceError, match="neither a directory of OSV JSON files nor"):
        load_advisories(tmp_path / "all.zip")


def test_allowances_match_ids_aliases_packages_and_expire() -> None:
    finding = Finding(
        "PYSEC-2021-59", ("CVE-2021-33503",), _pypi("urllib3", "1.26.4"), "1.26.5", ""
    )
    today = datetime.datetime.now(datetime.UTC).date()
    valid = AllowEntry(id="CVE-2021-33503", reason="r", expires=today)  # expiry day holds
    expired = AllowEntry(id="PYSEC-2021-59", reason="old", expires=today.replace(year=2020))
    other = AllowEntry(id="PYSEC-2021-59", reason="r", expires=today, package="requests")
    assert allowance(finding, (valid,)) == (valid, False)
    assert allowance(finding, (expired,)) == (expired, True)
    assert allowance(finding, (expired, valid)) == (valid, False)
    assert allowance(finding, (other,)) == (None, False)


def test_dpkg_listing_uses_source_packages_and_skips_removed() -> None:
    dpkg = (
        "zlib1g\t1:1.2.13.dfsg-1\tzlib\t1:1.2.13.dfsg-1\tii \n"
        "bash\t5.2.15-2+b13\tbash\t5.2.15-2\tii \n"
        "old\t1.0\told\t1.0\trc \n"
    )
    inventory = parse_listing(
        {"python": [["Jinja2", "3.1.2"]], "dpkg": dpkg, "os": 'ID=debian\nVERSION_ID="12"\n'}
    )
    assert inventory.debian_release == "12"
    assert inventory.packages == (
        Package("PyPI", "Jinja2", "3.1.2"),
        Package("Debian", "zlib", "1:1.2.13.dfsg-1", "zlib1g"),
        Package("Debian", "bash", "5.2.15-2", "bash"),
    )


@pytest.mark.parametrize(
    ("scan", "message"),
    [
        ({"osv": "x", "allow": [{"id": "A", "expires": "2027-01-31"}]}, "reason"),
        ({"osv": "x", "allow": [{"id": "A", "reason": " ", "expires": "2027-01-31"}]}, "empty"),
        ({"osv": "x", "allow": [{"id": "A", "reason": "r", "expires": "soon"}]}, "expires"),
        ({"allow": []}, "osv"),
    ],
)
def test_bad_scan_config_is_named(scan: dict[str, Any], message: str) -> None:
    with pytest.raises(ReleaseConfigError) as excinfo:
        load_release_config(
            {"gates": {"img": {"kind": "docker", "scan": scan}}},
            "pyproject.toml",
            builtin_gate_kinds(),
        )
    assert "gates.img.scan" in str(excinfo.value)
    assert message in str(excinfo.value)


# -- real images ---------------------------------------------------------------------------
FAKE_DISTS = {"urllib3": "1.26.4", "Jinja2": "3.1.2"}


def _build(docker_client: Any, context: Path, tag: str) -> None:
    docker_client.images.build(path=str(context), tag=tag, rm=True, forcerm=True)


@pytest.fixture(scope="module")
def images(
    docker_client: Any, base_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """``clean``: the docker gate's test service on the base image; ``vulnerable``: the
    same plus fake installations of urllib3 1.26.4 and Jinja2 3.1.2."""
    run = uuid.uuid4().hex[:10]
    tags = {
        "clean": f"pytest-release-test/scan-clean:{run}",
        "vulnerable": f"pytest-release-test/scan-vulnerable:{run}",
    }
    context = tmp_path_factory.mktemp("scan-image")
    shutil.copy(SERVICE / "app.py", context / "app.py")
    service = (SERVICE / "Dockerfile").read_text()
    (context / "Dockerfile").write_text(service)
    _build(docker_client, context, tags["clean"])
    site = context / "site-packages"
    for name, version in FAKE_DISTS.items():
        info = site / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            "Summary: FAKE installation for pytest-release's scan tests (metadata only)\n"
        )
    (context / "Dockerfile").write_text(
        service.replace(
            "COPY app.py /app/app.py\n",
            "COPY app.py /app/app.py\n"
            "COPY site-packages/ /usr/local/lib/python3.11/dist-packages/\n",
        )
    )
    _build(docker_client, context, tags["vulnerable"])
    try:
        yield tags
    finally:
        for tag in tags.values():
            docker_client.images.remove(tag, force=True)


def _scan_project(pytester: pytest.Pytester, image: str, scan: str, port: int = 0) -> Path:
    (pytester.path / "osv").mkdir()
    for folder in ("PyPI", "Debian"):
        shutil.copytree(OSV / folder, pytester.path / "osv" / folder)
    return project(
        pytester,
        f"""
        [gates.img]
        kind = "docker"
        build = false
        tag = "{image}"
        env = {{ PORT = "{port}" }}
        port = {port or 8000}
        health_path = "/health"
        scan = {scan}
        [stages.check]
        gates = ["img"]
        """,
    )


def _cases(root: Path) -> dict[str, Case]:
    return cases_by_name(stage_report(root, "check"))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _scan_containers(docker_client: Any, since: float, release: str) -> int:
    events = docker_client.events(
        since=int(since) - 1,
        until=int(time.time()) + 1,
        decode=True,
        filters={"type": "container", "event": "create", "label": f"{RELEASE_LABEL}={release}"},
    )
    names = [e["Actor"]["Attributes"]["name"] for e in events]
    return sum(1 for name in names if name.endswith("-scan"))


def test_clean_image_passes_the_whole_gate_with_the_scan(
    pytester: pytest.Pytester, images: dict[str, str]
) -> None:
    port = _free_port()
    root = _scan_project(pytester, images["clean"], '{ osv = "osv" }', port)
    result = run_stage(pytester, "check", "-rA")
    result.assert_outcomes(passed=7)
    cases = _cases(root)
    assert cases["vulnerability-scan"].values("vulnerability_source") == ["OSV export osv"]
    # 5 advisories, the base image's ~100 Debian packages, no finding.
    result.stdout.fnmatch_lines(
        ["*OSV export osv: 5 advisories; * packages scanned; 0 finding(s)*"]
    )
    assert not cases["vulnerabilities"].values("vulnerability")


def test_vulnerable_image_fails_with_the_advisories(
    pytester: pytest.Pytester, images: dict[str, str], docker_client: Any, xdist: list[str]
) -> None:
    port = _free_port()
    root = _scan_project(pytester, images["vulnerable"], '{ osv = "osv" }', port)
    release = f"scan-{uuid.uuid4().hex[:8]}"
    started = time.time()
    result = run_stage(pytester, "check", *xdist, release=release)
    result.assert_outcomes(passed=6, failed=1)
    message = _cases(root)["vulnerabilities"].failure()
    assert "the image has 2 vulnerable package(s) (OSV export osv)" in message
    assert "PYSEC-2021-59: urllib3 1.26.4 (PyPI, fixed in 1.26.5)" in message
    assert "GHSA-h5c8-rqwp-cp95: Jinja2 3.1.2 (PyPI, fixed in 3.1.3)" in message
    assert "scan.allow of [tool.pytest-release.gates.img]" in message
    assert len(_cases(root)["vulnerabilities"].values("vulnerability")) == 2
    assert _scan_containers(docker_client, started, release) == 1, "listed once per session"


def test_allowed_findings_pass_with_their_reasons_and_expired_ones_fail(
    pytester: pytest.Pytester, images: dict[str, str]
) -> None:
    far = (datetime.datetime.now(datetime.UTC).date() + datetime.timedelta(days=400)).isoformat()
    root = _scan_project(
        pytester,
        images["vulnerable"],
        "{ osv = 'osv', allow = ["
        f"{{ id = 'CVE-2024-22195', reason = 'xmlattr is never given user keys', "
        f"expires = {far} }}, "
        "{ id = 'PYSEC-2021-59', reason = 'URLs are ours', expires = 2020-01-31 } ] }",
    )
    result = run_stage(pytester, "check", "-k", "vulnerab")
    result.assert_outcomes(passed=1, failed=1)
    case = _cases(root)["vulnerabilities"]
    message = case.failure()
    assert "the image has 1 vulnerable package(s)" in message
    assert (
        "PYSEC-2021-59: urllib3 1.26.4 (PyPI, fixed in 1.26.5) - Catastrophic backtracking in "
        "urllib3's URL authority parser; the allowance expired on 2020-01-31 (reason was: "
        "URLs are ours)"
    ) in message
    assert f"allowed until {far}: xmlattr is never given user keys" in message
    [allowed] = case.values("vulnerability_allowed")
    assert allowed.startswith("GHSA-h5c8-rqwp-cp95: Jinja2 3.1.2")

    # Both allowed and valid: the finding item passes and shows the reasons.
    (root / "pyproject.toml").write_text(
        (root / "pyproject.toml").read_text().replace("2020-01-31", far)
    )
    passed = run_stage(pytester, "check", "-k", "vulnerab", "-rP", release="r2")
    passed.assert_outcomes(passed=2)
    passed.stdout.fnmatch_lines(
        [
            "*2 finding(s) allowed (OSV export osv):*",
            f"*PYSEC-2021-59: urllib3 1.26.4*allowed until {far}: URLs are ours*",
        ]
    )


def test_missing_advisory_source_fails_the_scan_loudly(
    pytester: pytest.Pytester, images: dict[str, str]
) -> None:
    root = _scan_project(pytester, images["clean"], '{ osv = "security/osv-PyPI.zip" }')
    result = run_stage(pytester, "check", "-k", "vulnerab")
    result.assert_outcomes(failed=1, skipped=1)
    message = _cases(root)["vulnerability-scan"].failure()
    assert "no advisories, so no scan: the OSV advisory source" in message
    assert "security/osv-PyPI.zip does not exist" in message
    assert "fix scan.osv in [tool.pytest-release.gates.img]" in message


def test_trivy_not_on_path_uses_the_osv_export(
    pytester: pytest.Pytester, images: dict[str, str]
) -> None:
    """Trivy is not installed here: the OSV path is taken (Trivy's own path is untested)."""
    assert shutil.which("trivy") is None, "this test expects no trivy on PATH"
    root = _scan_project(pytester, images["vulnerable"], '{ osv = "osv", trivy = true }')
    result = run_stage(pytester, "check", "-k", "vulnerab")
    result.assert_outcomes(passed=1, failed=1)
    case = _cases(root)["vulnerability-scan"]
    assert case.values("vulnerability_source") == ["OSV export osv"]


def test_debian_packages_of_the_image_match_a_zipped_debian_export(
    pytester: pytest.Pytester, images: dict[str, str]
) -> None:
    """The real dpkg listing of bookworm (source package zlib, epoch 1) against a zip."""
    root = _scan_project(pytester, images["clean"], '{ osv = "debian.zip", python = false }')
    with zipfile.ZipFile(root / "debian.zip", "w") as archive:
        for file in (DATA / "osv-debian").glob("*.json"):
            archive.write(file, f"Debian/{file.name}")
    result = run_stage(pytester, "check", "-k", "vulnerab")
    result.assert_outcomes(passed=1, failed=1)
    message = _cases(root)["vulnerabilities"].failure()
    assert (
        "DEBIAN-CVE-2023-45853: zlib1g (source zlib) 1:1.2.13.dfsg-1 (Debian, no fixed version)"
    ) in message
