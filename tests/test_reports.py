"""JUnit XML, GitHub annotations/summary/outputs, redaction, terminal summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_release.report.github import escape_data, escape_property
from pytest_release.report.redact import Redactor
from tests.support.junit import cases_by_name, report_xml
from tests.support.pipelines import UNIT_TEST
from tests.support.spine import github_outputs, ledger_runs, project, run_stage

WEBHOOK = "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX"
TOKEN = "s3cr3t-deploy-token-value"

FILES = {
    "tests/unit/test_math.py": """
        import os
        def test_adds():
            assert 1 + 1 == 2

        def test_leaks_secrets():
            print("calling", os.environ["SLACK_WEBHOOK_URL"])
            assert os.environ["DEPLOY_TOKEN"] == "x", "Authorization: Bearer abcdefghijklmnop"
    """,
    "tests/integration/test_flow.py": """
        def test_flow(record_property):
            record_property("endpoint", "/orders")
    """,
}


def _github_env(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    summary = pytester.path / "summary.md"
    outputs = pytester.path / "outputs.txt"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("SLACK_WEBHOOK_URL", WEBHOOK)
    monkeypatch.setenv("DEPLOY_TOKEN", TOKEN)
    return summary, outputs


def test_junit_one_suite_per_gate_with_properties_and_locations(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: list[str]
) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK_URL", WEBHOOK)
    monkeypatch.setenv("DEPLOY_TOKEN", TOKEN)
    project(
        pytester,
        'secrets = ["DEPLOY_TOKEN"]\n[gates.integration]\nafter = []\n'
        '[stages.ci]\ngates = ["unit", "integration"]\n',
        **FILES,
    )
    result = run_stage(pytester, "ci", "--image=shop:7", *xdist)
    assert result.ret == 1
    root = report_xml(pytester.path / "reports" / "ci.xml")
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == ["unit", "integration"]
    unit = suites["unit"]
    assert (unit.get("tests"), unit.get("failures"), unit.get("skipped")) == ("2", "1", "0")
    props = {p.get("name"): p.get("value") for p in unit.find("properties") or []}
    assert props == {
        "stage": "ci",
        "release_id": "r1",
        "image": "shop:7",
        "gate.unit.status": "failed",
    }
    integration = suites["integration"].find("properties")
    assert integration is not None
    assert {p.get("name"): p.get("value") for p in integration} == {
        "gate.integration.status": "passed"
    }
    cases = cases_by_name(pytester.path / "reports" / "ci.xml")
    adds = cases["test_adds"]
    assert adds.classname == "unit.tests.unit.test_math"
    assert adds.file == "tests/unit/test_math.py"
    assert adds.line == "3"  # the def line (the file starts with a blank line)
    assert "Bearer ***" in cases["test_leaks_secrets"].failure()
    whole = (pytester.path / "reports" / "ci.xml").read_text()
    assert TOKEN not in whole
    assert WEBHOOK not in whole
    assert "XXXXSECRETXXXX" not in whole
    assert "abcdefghijklmnop" not in whole
    assert cases["test_flow"].properties == {"endpoint": "/orders"}
    # Terminal output is redacted too.
    out = result.stdout.str()
    assert TOKEN not in out
    assert "XXXXSECRETXXXX" not in out


def test_github_annotations_summary_and_outputs(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: list[str]
) -> None:
    summary, outputs = _github_env(pytester, monkeypatch)
    project(
        pytester,
        'secrets = ["DEPLOY_TOKEN"]\n[stages.ci]\ngates = ["unit", "integration"]\n',
        **FILES,
    )
    result = run_stage(pytester, "ci", *xdist)
    errors = [line for line in result.stdout.lines if line.startswith("::error ")]
    assert len(errors) == 1, "exactly one annotation per failure, emitted once"
    (error,) = errors
    assert error.startswith(
        "::error file=tests/unit/test_math.py,line=8,title=ci/unit%3A test_leaks_secrets::"
    )
    assert "\n" not in error
    assert "%0A" in error
    assert TOKEN not in error
    assert "XXXXSECRETXXXX" not in error

    text = summary.read_text()
    assert "pytest-release stage `ci`: failed" in text
    assert "| unit | ❌ failed | 1 | 1 | 0 | 0 |" in text
    assert "| integration | ⛔ closed (gate 'unit' failed) | 0 | 0 | 0 | 1 |" in text
    assert list(github_outputs(outputs).items())[:2] == [
        ("stage", "ci"),
        ("stage_result", "failed"),
    ]


def test_passing_stage_outputs_passed_and_exit_zero(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, outputs = _github_env(pytester, monkeypatch)
    project(pytester, "[stages.ci]\ngates = ['integration']\n", **FILES)
    result = run_stage(pytester, "ci")
    assert result.ret == 0
    assert github_outputs(outputs)["stage_result"] == "passed"
    assert not [line for line in result.stdout.lines if line.startswith("::error")]


def test_terminal_summary_has_one_line_per_gate(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        "[stages.ci]\ngates = ['unit', 'integration', 'e2e']\n"
        "[gates.integration]\nallow_empty = true\n[gates.e2e]\nallow_empty = true\n",
        **UNIT_TEST,
    )
    result = run_stage(pytester, "ci")
    result.stdout.fnmatch_lines(
        [
            "*= release stage ci: passed =*",
            "gate unit: passed - 1 passed, 0 failed, 0 skipped, 0 closed in *s",
            "gate integration: empty - 0 passed*",
            "gate e2e: empty - 0 passed*",
            "junit: reports/ci.xml  ledger: .pytest-release/ledger.json",
        ]
    )


def test_escaping_follows_github_rules() -> None:
    assert escape_data("50%\r\nnext") == "50%25%0D%0Anext"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


def test_redactor_masks_configured_values_and_token_shapes() -> None:
    redact = Redactor.from_env(["MY_TOKEN", "UNSET"], environ={"MY_TOKEN": "hunter2hunter2"})
    text = redact(
        "token=hunter2hunter2 url=https://hooks.slack.com/services/T1/B2/abc "
        "auth: Bearer eyJhbGciOi.payload xoxb-1234567890-abcdef ghp_" + "a" * 36
    )
    assert text == "token=*** url=*** auth: Bearer *** *** ***"
    assert Redactor()("nothing secret here") == "nothing secret here"


def test_github_context_and_approval_are_recorded_in_the_ledger(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _github_env(pytester, monkeypatch)
    for key, value in {
        "GITHUB_ACTOR": "alice",
        "GITHUB_TRIGGERING_ACTOR": "bob",
        "GITHUB_RUN_ID": "4242",
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_REPOSITORY": "acme/shop",
        "GITHUB_JOB": "build",
    }.items():
        monkeypatch.setenv(key, value)
    project(
        pytester,
        "[stages.ci]\ngates = ['unit']\n",
        **UNIT_TEST,
    )
    assert run_stage(pytester, "ci", "--approved-via=release-approval").ret == 0
    (run,) = ledger_runs(pytester.path)
    assert run["approval"]["via"] == "release-approval"
    assert run["approval"]["actor"] == "bob"
    assert run["approval"]["run"] == "https://github.example/acme/shop/actions/runs/4242"
    assert run["ci"]["job"] == "build"
    assert run["ci"]["actor"] == "alice"
    status = pytester.runpytest_subprocess("--release-status", "--release-id=r1")
    status.stdout.fnmatch_lines(["*[approved via release-approval by bob]*"])


def test_the_redactor_says_whether_masking_would_change_a_text() -> None:
    redact = Redactor.from_env(["TOKEN"], {"TOKEN": "s3cr3t-value"})
    assert redact.finds("id test_x[s3cr3t-value]")
    assert redact.finds("token ghp_" + "a" * 30)  # a token shape, configured or not
    assert redact.finds("cut short: 's3cr3t...'")  # a piece before "..."
    assert not redact.finds("test_x[plain]\ntests/test_a.py::test_x[plain]")
    assert not redact.finds("s3cr3\nt-val")  # lines are searched one by one
    # A fragment of 6+ characters that looks random is masked, but not searched for in
    # node ids (pytest shows a parameter value whole there).
    assert redact("s3cr3t\n") == "***\n"
    assert not redact.finds("s3cr3t\n")


def test_step_summary_names_the_failed_tests_and_the_reports_artifact(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: list[str]
) -> None:
    summary, _ = _github_env(pytester, monkeypatch)
    monkeypatch.setenv("PYTEST_RELEASE_REPORTS_ARTIFACT", "reports-ci")
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/shop")
    monkeypatch.setenv("GITHUB_RUN_ID", "77")
    project(
        pytester,
        'secrets = ["DEPLOY_TOKEN"]\n[stages.ci]\ngates = ["unit", "integration"]\n',
        **FILES,
        **{
            "tests/unit/test_setup.py": """
                import pytest
                @pytest.fixture
                def broken():
                    raise RuntimeError("no database | at all")
                def test_needs_db(broken):
                    pass
            """
        },
    )
    run_stage(pytester, "ci", *xdist)
    lines = summary.read_text().splitlines()
    assert "**Failed tests** (2)" in lines
    rows = [line for line in lines if line.startswith("| unit | `")]
    assert sorted(rows) == [
        "| unit | `test_leaks_secrets` | `tests/unit/test_math.py:8` "
        "| AssertionError: Authorization: Bearer *** |",
        "| unit | `test_needs_db` (error) | `tests/unit/test_setup.py:5` "
        "| RuntimeError: no database \\| at all |",
    ]
    assert (
        "Full reports (JUnit, plots, screenshots) in the artifact `reports-ci` of "
        "[this run](https://github.com/acme/shop/actions/runs/77#artifacts)."
    ) in lines
    assert TOKEN not in summary.read_text()


def test_step_summary_lists_at_most_twenty_failed_tests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary, _ = _github_env(pytester, monkeypatch)
    monkeypatch.delenv("PYTEST_RELEASE_REPORTS_ARTIFACT", raising=False)
    tests = "".join(f"def test_{i:02d}():\n    assert {i} == -1\n" for i in range(25))
    project(pytester, '[stages.ci]\ngates = ["unit"]\n', **{"tests/unit/test_many.py": tests})
    run_stage(pytester, "ci")
    text = summary.read_text()
    assert "**Failed tests** (25)" in text
    listed = [line for line in text.splitlines() if line.startswith("| unit | `test_")]
    assert len(listed) == 20
    assert listed[0] == "| unit | `test_00` | `tests/unit/test_many.py:2` | assert 0 == -1 |"
    assert "… and 5 more failed tests: see the JUnit report." in text
    assert "Reports in `reports` on the runner (no artifact keeps them)." in text


def test_a_canary_failure_and_its_stage_verdict_are_one_annotation() -> None:
    """The failing interval and the stage verdict (which repeats the interval's failing
    checks) point at the same gate table: one annotation, each line once.  Two failing
    tests stay two annotations."""
    from pytest_release.canary.judge import Judge, JudgeConfig
    from pytest_release.report.github import GENERATED_CHECK, error_annotations
    from pytest_release.report.junit import CaseRecord
    from tests.canary.test_plot import hold

    _, verdicts = hold()
    failing = next(v for v in verdicts if v.verdict == "fail")
    stage_verdict = Judge(JudgeConfig()).judge_stage(verdicts)
    assert stage_verdict.verdict == "fail"

    def check(name: str, message: str) -> CaseRecord:
        return CaseRecord(
            f"release.toml::canary::{name}",
            "canary",
            "release.toml",
            12,
            outcome="failure",
            error_type=GENERATED_CHECK,
            message=message.splitlines()[0],
            text=message,
        )

    interval_text, verdict_text = failing.failure_message(), stage_verdict.failure_message()
    repeated = set(interval_text.splitlines()) & set(verdict_text.splitlines())
    assert repeated  # the verdict does repeat the interval's lines
    tests = [
        CaseRecord(f"tests/test_a.py::test_{n}", "unit", "tests/test_a.py", n, outcome="failure")
        for n in (3, 7)
    ]
    cases = [check("health@120s", interval_text), check("verdict", verdict_text), *tests]
    annotations = error_annotations(cases, "canary-1", Redactor())
    assert len(annotations) == 3
    canary = annotations[0]
    assert canary.startswith(
        "::error file=release.toml,line=12,title=canary-1/canary%3A health@120s (+1 more)::"
    )
    body = canary.split("::", 2)[2].split("%0A")
    assert len(body) == len(set(body))  # no line twice
    every = set(interval_text.splitlines()) | set(verdict_text.splitlines())
    assert set(body) == {escape_data(line) for line in every}
    assert [a.split(",", 2)[1] for a in annotations[1:]] == ["line=3", "line=7"]


@pytest.mark.parametrize(
    ("narrowing", "mark"),
    [(["--gate=unit"], "partial: unit"), (["-k", "adds"], "partial run")],
    ids=["gate", "k"],
)
def test_a_partial_run_says_so_in_its_banner_and_step_summary(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, narrowing: list[str], mark: str
) -> None:
    """``passed`` alone would read as the whole stage (issue 30): the banner and the step
    summary mark a partial run as ``--release-status`` does."""
    project(
        pytester,
        '[stages.check]\ngates = ["unit", "integration"]\n',
        **{
            "tests/unit/test_math.py": "def test_adds(): pass\ndef test_subtracts(): pass\n",
            "tests/integration/test_flow.py": "def test_flow(): pass\n",
        },
    )
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_OUTPUT", str(pytester.path / "outputs.txt"))
    result = run_stage(pytester, "check", *narrowing)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([f"*= release stage check: passed ({mark}) =*"])
    assert f"pytest-release stage `check`: passed ({mark})\n" in summary.read_text()
    assert github_outputs(pytester.path / "outputs.txt")["stage_result"] == "passed"

    whole = run_stage(pytester, "check", release="r2")
    whole.stdout.fnmatch_lines(["*= release stage check: passed =*"])
