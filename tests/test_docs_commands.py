"""Every command of README.md and docs/*.md works as written, or says why it is not run
here (issue 30, item 4).

The shell blocks (fences with no language, ``bash``, ``sh``, ``shell`` or ``console``;
output is fenced as ``text``) are cut into commands: ``$ `` lines where a block has them
(the rest is the output they print), else every line that is not indented, continuation
lines (``\\``) and here-documents joined.  Each command needs a decision in ``DECISIONS``:
:class:`Run` (it runs in this test, in order, in a scenario's directory, through ``bash``
with this checkout's venv first on ``PATH``) or :class:`NotHere` (the reason).  A new
command without a decision, or a decision whose command is gone, fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_LANGUAGES = {"", "bash", "sh", "shell", "console"}
FENCE = re.compile(r"^```(\S*)\s*$")
HEREDOC = re.compile(r"<<-?\s*'?(\w+)'?")
TRAILING_COMMENT = re.compile(r"\s+#\s.*$")
# The tutorial copies the reference service from "<pytest-release checkout>".
CHECKOUT_PLACEHOLDER = "<pytest-release checkout>"


@dataclass(frozen=True)
class DocCommand:
    doc: str  # README.md, docs/tutorial.md
    line: int
    text: str  # continuation lines joined with a space, trailing comments removed


@dataclass(frozen=True)
class Run:
    """Runs in ``scenario`` (see :func:`_scenario_dir`); exits ``exit``, prints
    ``expect`` (a regular expression over stdout and stderr); writes ``same_as``'s
    repository file byte for byte when given (a generated file that is committed)."""

    scenario: str
    expect: str
    exit: int = 0
    same_as: str | None = None


@dataclass(frozen=True)
class NotHere:
    reason: str


PIPELINE_TEST = "tests/test_pipeline.py::test_pipeline_runs_green_then_bad_releases_are_stopped"
INSTALL = NotHere(
    "installs from the package index, which this machine cannot reach; the test runs in "
    "this checkout's venv, installed with pip install -e '.[test]' as the README says"
)
CLUSTER = NotHere("needs a Kubernetes cluster and a registry it pulls from")
LONG_PIPELINE = NotHere(f"the whole demo pipeline (minutes of builds and holds): {PIPELINE_TEST}")
ELIDED = NotHere("'...' stands for the options of the command above: not a command as such")
REGISTRY_RELEASE = NotHere(
    "needs the image a pipeline run pushed to its registry and the main deployment it "
    "started, and holds of minutes (the docs' profiles without suites/demo.toml)"
)
TUTORIAL_HOLD = NotHere(
    "a judged canary hold with HAProxy and replicas (about 40 s for the tutorial's stages); "
    "the same stages run in tests/canary/"
)

Decision = Run | NotHere
# A command written more than once in a document: one decision per occurrence, in order.
DECISIONS: dict[tuple[str, str], Decision | tuple[Decision, ...]] = {
    # README.md: the synopsis
    ("README.md", "pytest --stage=uat"): NotHere(
        "the built-in uat stage of a project (lint, Docker, Chromium, newman): the pipeline "
        f"runs it over the suites, {PIPELINE_TEST}"
    ),
    ("README.md", "pytest --stage=canary-1 --image=shop:42"): NotHere(
        "shop:42 is a placeholder image of the reader's project"
    ),
    ("README.md", "pytest --stage=uat --gate=lint"): NotHere(
        "the lint gate of the reader's project; tests/test_gate_lint.py runs the gate"
    ),
    ("README.md", "pytest --release-status"): Run("repo", "the ledger records no release yet"),
    # README.md: the demo
    (
        "README.md",
        "git clone https://github.com/pytest-release/pytest-release.git && cd pytest-release",
    ): NotHere(
        "clones from GitHub, which this machine cannot reach: the test runs in this checkout"
    ),
    ("README.md", "python3 -m venv .venv && .venv/bin/pip install -e '.[test]'"): INSTALL,
    ("README.md", ".venv/bin/python scripts/pipeline.py"): LONG_PIPELINE,
    ("README.md", ".venv/bin/python scripts/pipeline.py --bad"): LONG_PIPELINE,
    ("README.md", ".venv/bin/python scripts/pipeline.py --bad=staging"): LONG_PIPELINE,
    ("README.md", ".venv/bin/pytest --release-status"): Run(
        "repo", "the ledger records no release yet"
    ),
    (
        "README.md",
        ".venv/bin/pytest --release-status --release-config=suites/release.toml "
        "--release-id=352cac460c7d-3",
    ): Run("repo", r"release 352cac460c7d-3: no stage has run yet"),
    ("README.md", ".venv/bin/python -m pytest_release.canary.teardown"): Run(
        "repo", "nothing runs under"
    ),
    # README.md: install
    ("README.md", "pip install pytest-release"): INSTALL,
    ("README.md", "pip install 'pytest-release[xdist]'"): INSTALL,
    ("README.md", "pip install 'pytest-release[lint]'"): INSTALL,
    ("README.md", "pip install 'pytest-release[docker]'"): INSTALL,
    ("README.md", "pip install 'pytest-release[e2e]'"): INSTALL,
    ("README.md", "pip install 'pytest-release[canary]'"): INSTALL,
    ("README.md", "pip install 'pytest-release[kubernetes]'"): INSTALL,
    # README.md: the quick start, in a project made of its pyproject.toml block
    ("README.md", "pytest --stage=staging --release-id=dev"): (
        Run("quickstart", r"stage 'staging' requires 'uat' \(has not run\)", exit=4),
        Run("quickstart", "release stage staging: passed"),  # after uat: allowed now
    ),
    ("README.md", "pytest --stage=uat --release-id=dev"): Run(
        "quickstart", r"gate unit: passed - 2 passed.*\n.*gate integration: passed - 1 passed"
    ),
    ("README.md", "pytest --release-status --release-id=dev"): Run(
        "quickstart", r"release dev:\n.*\n  uat +passed.*\n  staging +passed"
    ),
    # README.md: a canary stage by hand
    (
        "README.md",
        "pytest suites --release-config=suites/release.toml --stage=canary-1 "
        "--image=127.0.0.1:5000/shop:release-3",
    ): REGISTRY_RELEASE,
    ("README.md", "pytest ... --stage=canary-2 ..."): ELIDED,
    ("README.md", "pytest ... --stage=canary-3 ..."): ELIDED,
    ("README.md", "pytest ... --stage=rollback"): ELIDED,
    ("README.md", "python -m pytest tests -n 2 -p no:cacheprovider"): NotHere(
        "the whole test suite, of which this test is a part"
    ),
    # docs/blue-green.md, docs/profiles.md
    (
        "docs/blue-green.md",
        "pytest --release-config=suites/release.toml --release-config=suites/bluegreen.toml "
        "--stage=bluegreen-deploy --image=127.0.0.1:5000/shop:release-1",
    ): REGISTRY_RELEASE,
    (
        "docs/blue-green.md",
        "pytest ... --stage=bluegreen-switch --image=127.0.0.1:5000/shop:release-1",
    ): ELIDED,
    ("docs/blue-green.md", "pytest ... --stage=smoke"): ELIDED,
    (
        "docs/blue-green.md",
        "pytest ... --stage=bluegreen-finish --image=127.0.0.1:5000/shop:release-1",
    ): ELIDED,
    (
        "docs/blue-green.md",
        "pytest ... --stage=rollback --image=127.0.0.1:5000/shop:release-1",
    ): ELIDED,
    (
        "docs/profiles.md",
        "pytest --release-config=suites/release.toml --release-config=suites/seed-002.toml "
        "--stage=canary-1 --image=127.0.0.1:5000/shop:release-1",
    ): REGISTRY_RELEASE,
    ("docs/profiles.md", ".venv/bin/python scripts/pipeline.py --profile seed-002"): NotHere(
        "a whole pipeline run: tests/test_pipeline.py::test_pipeline_profiles_run_end_to_end"
    ),
    ("docs/profiles.md", ".venv/bin/python scripts/pipeline.py --profile bluegreen"): NotHere(
        "a whole pipeline run: tests/test_pipeline.py::test_pipeline_profiles_run_end_to_end"
    ),
    # the workflow generator: the documented commands write the committed workflows
    (
        "docs/github-actions.md",
        "python -m pytest_release workflow --release-config=suites/release.toml "
        "--release-config=suites/github.toml --pytest-args=suites --install='-e .[test]' "
        "--action=./ '--stage-env=smoke:SHOP_URL=${{ vars.SHOP_URL }}' "
        "'--stage-env=staging:SHOP_URL=${{ vars.STAGING_URL }}' "
        "'--stage-env=staging:PROMETHEUS_URL=${{ vars.PROMETHEUS_URL }}' "
        "'--stage-env=canary-1:PROMETHEUS_URL=${{ vars.PROMETHEUS_URL }}' "
        "'--stage-env=canary-2:PROMETHEUS_URL=${{ vars.PROMETHEUS_URL }}' "
        "'--stage-env=canary-3:PROMETHEUS_URL=${{ vars.PROMETHEUS_URL }}' "
        "-o .github/workflows/release.yml",
    ): Run("repo", "", same_as=".github/workflows/release.yml"),
    (
        "docs/github-actions.md",
        "python -m pytest_release workflow --check .github/workflows/release.yml",
    ): Run("repo", "is up to date"),
    (
        "docs/cloud-run.md",
        "python -m pytest_release workflow --release-config=suites/release.toml "
        "--release-config=suites/github.toml --release-config=suites/seed-002.toml "
        "--release-config=suites/cloud-run.toml --pytest-args=suites '--install=-e .[test]' "
        "--action=./ --name=release-cloud-run "
        "'--image=europe-west1-docker.pkg.dev/acme-shop/shop/shop:${{ github.sha }}' "
        "'--stage-env=smoke:SHOP_URL=${{ vars.SHOP_URL }}' "
        "'--stage-env=staging:SHOP_URL=${{ vars.STAGING_URL }}' "
        "-o .github/workflows/release-cloud-run.yml",
    ): Run("repo", "", same_as=".github/workflows/release-cloud-run.yml"),
    # docs/kubernetes.md
    ("docs/kubernetes.md", "kubectl apply -n shop -f deploy/kubernetes/example/"): CLUSTER,
    ("docs/kubernetes.md", "pytest --stage=canary-1 --image=ghcr.io/acme/shop:1.1.0"): CLUSTER,
    ("docs/kubernetes.md", "pytest --stage=canary-2 --image=ghcr.io/acme/shop:1.1.0"): CLUSTER,
    ("docs/kubernetes.md", "pytest --stage=canary-3 --image=ghcr.io/acme/shop:1.1.0"): CLUSTER,
    ("docs/kubernetes.md", "pytest --stage=rollback"): CLUSTER,
    (
        "docs/kubernetes.md",
        "python -m pytest_release k8s-watchdog manifest --namespace shop --app shop "
        "--router traefik --image ghcr.io/acme/ci:latest > watchdog.json",
    ): Run("repo", ""),
    ("docs/kubernetes.md", "kubectl apply -f watchdog.json"): CLUSTER,
    (
        "docs/kubernetes.md",
        "python scripts/pipeline.py --platform kubernetes --kubeconfig ~/.kube/config "
        "--namespace shop --image ghcr.io/acme/shop:1.1.0 "
        "--router-url http://shop.example.com [--sample-pods]",
    ): CLUSTER,
    # docs/argo-rollouts.md
    (
        "docs/argo-rollouts.md",
        "python -m pytest_release argo-rollouts --release-config argo-target.toml "
        "--runner-image ghcr.io/acme/shop-tests:1.4 -o argo.yaml",
    ): NotHere(
        "needs a project whose canary gate has the kubernetes platform and the traefik "
        "router; tests/kubernetes/test_argo_resources.py generates from such a project"
    ),
    (
        "docs/argo-rollouts.md",
        "python -m pytest_release analysis-server --host 0.0.0.0 --port 8080",
    ): NotHere(
        "a server that runs until stopped, on all interfaces; tests/canary/"
        "test_analysis_server.py runs it on 127.0.0.1"
    ),
    (
        "docs/argo-rollouts.md",
        "python -m pytest_release argo-status --namespace shop --rollout shop --stage "
        "canary-1 --release-id 6d4f8b9c7",
    ): NotHere(
        "needs a cluster where Argo Rollouts drives the Rollout; tests/kubernetes/"
        "test_argo_controller.py runs it against the real controller"
    ),
    # docs/flagger.md
    ("docs/flagger.md", "python -m pytest_release webhook --host 0.0.0.0 --port 8080"): NotHere(
        "a server that runs until stopped, on all interfaces; tests/test_flagger_webhook.py "
        "runs it on 127.0.0.1"
    ),
    (
        "docs/flagger.md",
        "python -m pytest_release flagger --webhook-url "
        "http://pytest-release-webhook.shop:8080 -o canary.yaml",
    ): NotHere(
        "needs a project whose canary gate has the kubernetes platform and the traefik "
        "router; tests/kubernetes/test_flagger_resources.py generates from such a project"
    ),
    # docs/tutorial.md, in an empty directory with the tutorial's pyproject.toml blocks
    ("docs/tutorial.md", "python3 -m venv .venv && . .venv/bin/activate"): INSTALL,
    ("docs/tutorial.md", "pip install 'pytest-release[canary]'"): INSTALL,
    ("docs/tutorial.md", "mkdir -p tests/unit"): Run("tutorial", ""),
    ("docs/tutorial.md", f"cp -r {CHECKOUT_PLACEHOLDER}/examples/shop ./service"): Run(
        "tutorial", ""
    ),
    (
        "docs/tutorial.md",
        "cat > tests/unit/test_catalog.py <<'EOF'\n"
        "from shop.catalog import Catalog\n\n\n"
        "def test_order_total():\n"
        '    order = Catalog().place_order([{"product_id": "tea", "quantity": 2}])\n'
        '    assert str(order.total) == "9.00"\n'
        "EOF",
    ): Run("tutorial", ""),
    ("docs/tutorial.md", "pytest --stage=uat --release-id=v2"): Run(
        "tutorial", "gate unit: passed - 1 passed, 0 failed, 0 skipped, 0 closed"
    ),
    ("docs/tutorial.md", "pytest --stage=canary-1 --release-id=v2 --image=v2"): TUTORIAL_HOLD,
    ("docs/tutorial.md", "pytest --stage=canary-2 --release-id=v2 --image=v2"): TUTORIAL_HOLD,
    ("docs/tutorial.md", "pytest --stage=canary-3 --release-id=v2 --image=v2"): TUTORIAL_HOLD,
    ("docs/tutorial.md", "curl -s 127.0.0.1:18100/version"): TUTORIAL_HOLD,
    ("docs/tutorial.md", "pytest --release-status --release-id=v2"): Run(
        "tutorial", r"release v2:\n.*\n  uat +passed"
    ),
    ("docs/tutorial.md", "pytest --stage=uat --release-id=v2-bad"): Run(
        "tutorial", "release stage uat: passed"
    ),
    ("docs/tutorial.md", "pytest --stage=canary-1 --release-id=v2-bad --image=v2-bad"): (
        TUTORIAL_HOLD
    ),
    ("docs/tutorial.md", "python -m pytest_release.canary.teardown"): Run(
        "tutorial", "nothing runs under"
    ),
}


def doc_commands(path: Path) -> list[DocCommand]:
    """The commands of ``path``'s shell blocks, in order."""
    doc = path.relative_to(ROOT).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    commands: list[DocCommand] = []
    index = 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if fence is None:
            index += 1
            continue
        end = index + 1
        while not lines[end].startswith("```"):
            end += 1
        if fence.group(1) in SHELL_LANGUAGES:
            commands += _block_commands(doc, index + 2, lines[index + 1 : end])
        index = end + 1
    return commands


def _block_commands(doc: str, first_line: int, block: list[str]) -> list[DocCommand]:
    prompted = any(line.startswith("$ ") for line in block)
    commands = []
    index = 0
    while index < len(block):
        line, number = block[index], first_line + index
        index += 1
        if prompted:
            if not line.startswith("$ "):
                continue  # output the command prints
            line = line[2:]
        elif not line.strip() or line.startswith((" ", "#")):
            continue  # output, or a comment
        parts = [TRAILING_COMMENT.sub("", line).strip()]
        while parts[-1].endswith("\\") and index < len(block):
            parts[-1] = parts[-1][:-1].strip()
            parts.append(TRAILING_COMMENT.sub("", block[index]).strip())
            index += 1
        text = " ".join(parts)
        heredoc = HEREDOC.search(text)
        if heredoc is not None:
            body = []
            while index < len(block):
                body.append(block[index])
                index += 1
                if block[index - 1] == heredoc.group(1):
                    break
            text = "\n".join([text, *body])
        commands.append(DocCommand(doc, number, text))
    return commands


def _all_commands() -> list[DocCommand]:
    return [command for doc in DOCS for command in doc_commands(doc)]


def _decided() -> list[tuple[DocCommand, Decision | None]]:
    """Every documented command with its decision (None: it has none)."""
    seen: dict[tuple[str, str], int] = {}
    decided: list[tuple[DocCommand, Decision | None]] = []
    for command in _all_commands():
        key = (command.doc, command.text)
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        decision = DECISIONS.get(key)
        if isinstance(decision, tuple):
            decision = decision[occurrence] if occurrence < len(decision) else None
        elif occurrence > 0 and decision is not None and not isinstance(decision, NotHere):
            decision = None  # a command run twice needs a decision per run
        decided.append((command, decision))
    return decided


def test_every_documented_command_has_a_decision() -> None:
    decided = _decided()
    undecided = [f"{c.doc}:{c.line}: {c.text!r}" for c, d in decided if d is None]
    assert not undecided, (
        "commands in the docs without a decision in DECISIONS (Run it here, or NotHere with "
        "the reason; one per occurrence for a command run twice):\n" + "\n".join(undecided)
    )
    counts: dict[tuple[str, str], int] = {}
    for command, _ in decided:
        counts[(command.doc, command.text)] = counts.get((command.doc, command.text), 0) + 1
    stale = [
        f"{doc}: {text!r}"
        for (doc, text), decision in DECISIONS.items()
        if (doc, text) not in counts
        or (isinstance(decision, tuple) and len(decision) != counts[(doc, text)])
    ]
    assert not stale, "decisions for commands no longer in the docs:\n" + "\n".join(stale)


def _scenario_dir(scenario: str, tmp_path: Path) -> Path:
    """repo: the checkout's suites, examples, scripts and project files, with a ledger and
    reports of its own; quickstart: the README's quick-start project; tutorial: an empty
    directory with the tutorial's pyproject.toml.  Each has ``.venv`` = this venv."""
    where = tmp_path / scenario
    where.mkdir()
    (where / ".venv").symlink_to(Path(sys.prefix))
    if scenario == "repo":
        for name in ("suites", "examples", "scripts", "pyproject.toml", "conftest.py"):
            (where / name).symlink_to(ROOT / name)
        shutil.copy(ROOT / "action.yml", where)
    elif scenario == "quickstart":
        (where / "pyproject.toml").write_text(_toml_blocks(ROOT / "README.md", "pytest-release"))
        for gate, tests in (("unit", 2), ("integration", 1), ("smoke", 1)):
            (where / "tests" / gate).mkdir(parents=True)
            body = "".join(f"def test_{gate}_{n}():\n    pass\n\n\n" for n in range(tests))
            (where / "tests" / gate / f"test_{gate}.py").write_text(body)
    elif scenario == "tutorial":
        (where / "pyproject.toml").write_text(_toml_blocks(ROOT / "docs" / "tutorial.md", ""))
    return where


def _toml_blocks(doc: Path, containing: str) -> str:
    """The ``toml`` blocks of ``doc`` that mention ``containing``, joined (one
    pyproject.toml that the document builds up)."""
    blocks = re.findall(r"^```toml\n(.*?)^```$", doc.read_text(), flags=re.M | re.S)
    return "\n".join(b for b in blocks if containing in b and "[tool." in b)


SCENARIOS = sorted(
    {
        d.scenario
        for value in DECISIONS.values()
        for d in (value if isinstance(value, tuple) else (value,))
        if isinstance(d, Run)
    }
)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_documented_commands_work_as_written(scenario: str, tmp_path: Path) -> None:
    where = _scenario_dir(scenario, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "GITHUB_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    ran = 0
    for command, decision in _decided():
        if not isinstance(decision, Run) or decision.scenario != scenario:
            continue
        text = command.text.replace(CHECKOUT_PLACEHOLDER, str(ROOT))
        result = subprocess.run(
            ["bash", "-c", text],
            cwd=where,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        output = result.stdout + result.stderr
        shown = f"{command.doc}:{command.line}: {command.text}\nexit {result.returncode}\n{output}"
        assert result.returncode == decision.exit, shown
        assert re.search(decision.expect, output), f"expected /{decision.expect}/ in\n{shown}"
        if decision.same_as is not None:
            written = (where / decision.same_as).read_bytes()
            assert written == (ROOT / decision.same_as).read_bytes(), (
                f"{command.doc}:{command.line} writes {decision.same_as} other than the "
                "committed one: the documented command and the file disagree"
            )
        ran += 1
    assert ran > 0
