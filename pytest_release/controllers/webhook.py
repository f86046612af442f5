"""``python -m pytest_release webhook``: pytest-release answering Flagger's webhooks.

Flagger POSTs the same payload to every webhook (:mod:`.flagger_payload`); the URL path
says which hook it is: ``POST /<hook>``. The release id is the payload's ``checksum``.
Flagger takes 200-202 as success and anything else (or a timeout) as a failed check.

* ``pre-rollout`` (``metadata.stage``) and ``rollout`` (the stage configured with the
  Canary's weight, read from its status; or ``metadata.stage``): the stage's verdict for
  the release, from the ledger (:mod:`.verdict`). A stage with no run for the release is
  started here (``pytest --stage=<stage> --release-id=<checksum>``, :mod:`.stage_runs`) and
  answered ``running``. ``pass`` is 200, ``fail`` 409; ``running``, ``insufficient`` and
  ``none`` answer ``--running-status`` / ``--insufficient-status`` (default 503, not 2xx:
  Flagger does not advance; it counts a failed check toward ``threshold``).
* ``confirm-promotion``: 200 only when every mirrored stage (or ``metadata.stage``) passed.
* ``rollback``: 200 when a stage recorded for the release (the checksum) failed: Flagger
  rolls back at once. Otherwise 409: "not signalling a rollback".
* ``post-rollout``: what Flagger did (``Succeeded``: promoted, ``Failed``: rolled back)
  recorded in the release's latest entry of each stage (``details.controller``).

``GET /healthz`` answers 200. A request pytest-release cannot answer is a 400 or 404 whose
body says what was wrong.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_release.config.command_line import comma_separated
from pytest_release.controllers.flagger_payload import (
    HOOKS,
    FlaggerPayload,
    PayloadError,
    parse_payload,
)
from pytest_release.controllers.serving import http_server, serve, server_parser
from pytest_release.errors import LedgerError, PlatformError, ReleaseConfigError

if TYPE_CHECKING:
    from pytest_release.canary.platforms.kubernetes.client import KubeApi
    from pytest_release.controllers.flagger_status import CanaryState
    from pytest_release.controllers.json_answer import ServerOutput
    from pytest_release.controllers.stage_runs import StageRuns
    from pytest_release.ledger.ledger import Ledger, LedgerEntry

PASS_STATUS = 200
FAIL_STATUS = 409
NO_ROLLBACK_STATUS = 409
WAIT_STATUS = 503
# A Flagger checksum is a short alphanumeric hash; it becomes a command-line value and a
# file name, so nothing else is accepted.
CHECKSUM_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class WebhookSettings:
    stage_weights: tuple[tuple[str, int], ...]  # the mirrored stages and their weights
    defined_stages: frozenset[str]
    running_status: int = WAIT_STATUS
    insufficient_status: int = WAIT_STATUS

    @property
    def stages(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.stage_weights)


class Webhook:
    """The answers, apart from HTTP (tests call it through a real server)."""

    def __init__(
        self,
        settings: WebhookSettings,
        ledger: Ledger,
        runs: StageRuns,
        cluster: Callable[[], KubeApi],
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.runs = runs
        self._cluster = cluster
        self._api: KubeApi | None = None
        self._api_lock = threading.Lock()  # requests are served on threads

    def answer(self, hook: str, payload: FlaggerPayload) -> Answer:
        if not set(payload.checksum) <= CHECKSUM_CHARS or len(payload.checksum) > 128:
            raise PayloadError(
                f"field 'checksum' is {payload.checksum!r}: Flagger's checksum is a short hash "
                "of letters and digits (it is the release id the stages are recorded under)"
            )
        if hook == "post-rollout":
            return self._post_rollout(payload)
        if hook == "rollback":
            return self._rollback(payload)
        if hook == "confirm-promotion":
            stages = self._pinned(payload) or self.settings.stages
            return self._all_passed(payload, stages)
        if hook == "pre-rollout":
            stage = self._pinned(payload)
            if not stage:
                raise PayloadError(
                    "the pre-rollout webhook names no stage: give it metadata "
                    "{stage: <a stage of the release configuration>} (the stage to run "
                    "against the canary before it gets traffic)"
                )
            return self._stage_answer(hook, payload, stage[0])
        pinned = self._pinned(payload)
        return self._stage_answer(hook, payload, pinned[0] if pinned else self._by_weight(payload))

    # -- which stage -----------------------------------------------------------------
    def _pinned(self, payload: FlaggerPayload) -> tuple[str, ...]:
        stage = payload.metadata.get("stage")
        if stage is None:
            return ()
        if stage not in self.settings.defined_stages:
            raise PayloadError(
                f"metadata.stage is {stage!r}, which the release configuration does not "
                f"define; defined: {', '.join(sorted(self.settings.defined_stages))}"
            )
        return (stage,)

    def _by_weight(self, payload: FlaggerPayload) -> str:
        with self._api_lock:
            if self._api is None:
                self._api = self._cluster()
            api = self._api
        state = read_canary_state(api, payload)
        for stage, weight in self.settings.stage_weights:
            if weight == state.canary_weight:
                return stage
        mirrored = ", ".join(f"{s} ({w} %)" for s, w in self.settings.stage_weights)
        raise PayloadError(
            f"Canary {payload.canary} is at {state.canary_weight} % (phase {state.phase}), "
            f"the weight of none of the mirrored stages: {mirrored}. Generate the Canary's "
            "stepWeights from the same configuration (python -m pytest_release flagger), or "
            "name the stage in the webhook's metadata.stage"
        )

    # -- answers ---------------------------------------------------------------------
    def _document(self, hook: str, payload: FlaggerPayload, stage: str) -> dict[str, Any]:
        from pytest_release.controllers.verdict import verdict_document

        entry = self.ledger.latest(payload.checksum, stage)
        document = verdict_document(stage, payload.checksum, entry)
        document.update(hook=hook, canary=payload.canary, phase=payload.phase)
        return document

    def _status(self, verdict: str) -> int:
        if verdict == "pass":
            return PASS_STATUS
        if verdict == "fail":
            return FAIL_STATUS
        if verdict == "insufficient":
            return self.settings.insufficient_status
        return self.settings.running_status

    def _stage_answer(self, hook: str, payload: FlaggerPayload, stage: str) -> Answer:
        document = self._document(hook, payload, stage)
        if document["verdict"] == "none":
            started = self.runs.started(stage, payload.checksum)
            if started is not None and started.exit_code is not None:
                # It ended without a record: not a verdict; the reason is in its output.
                document.update(
                    verdict="error",
                    message=f"pytest --stage={stage} --release-id={payload.checksum} exited "
                    f"{started.exit_code} without recording the stage: {started.log_tail()}",
                )
                return Answer(500, document)
            if started is None:
                started = self.runs.start(stage, payload.checksum)
                document["message"] = (
                    f"started pytest --stage={stage} --release-id={payload.checksum} "
                    f"(pid {started.pid}, log {started.log})"
                )
            else:
                document["message"] = f"pytest --stage={stage} is starting (pid {started.pid})"
            document["verdict"] = "running"
        return Answer(self._status(str(document["verdict"])), document)

    def _all_passed(self, payload: FlaggerPayload, stages: Sequence[str]) -> Answer:
        for stage in stages:
            document = self._document("confirm-promotion", payload, stage)
            if document["verdict"] != "pass":
                document["message"] = (
                    f"no promotion: stage {stage!r} is {document['verdict']!r} for release "
                    f"{payload.checksum!r}: {document.get('message', '')}"
                )
                status = self._status(str(document["verdict"]))
                return Answer(status if status != PASS_STATUS else WAIT_STATUS, document)
        return Answer(
            PASS_STATUS,
            {
                "hook": "confirm-promotion",
                "canary": payload.canary,
                "release": payload.checksum,
                "verdict": "pass",
                "stages": list(stages),
                "message": f"every stage passed for release {payload.checksum!r}: "
                + ", ".join(stages),
            },
        )

    def _recorded_stages(self, payload: FlaggerPayload) -> tuple[str, ...]:
        """The stages recorded for the release (its checksum: this analysis), in order."""
        recorded = [e.stage for e in self.ledger.for_release(payload.checksum)]
        return tuple(dict.fromkeys(recorded))

    def _rollback(self, payload: FlaggerPayload) -> Answer:
        # Any stage of this analysis (the pre-rollout one too), not only the mirrored ones.
        stages = self._pinned(payload) or self._recorded_stages(payload)
        for stage in stages:
            document = self._document("rollback", payload, stage)
            if document["verdict"] == "fail":
                document["message"] = f"roll back: {document.get('message', '')}"
                return Answer(PASS_STATUS, document)
        return Answer(
            NO_ROLLBACK_STATUS,
            {
                "hook": "rollback",
                "canary": payload.canary,
                "release": payload.checksum,
                "verdict": "none",
                "message": "no rollback: no stage failed for release "
                f"{payload.checksum!r} ({', '.join(stages) or 'none recorded'})",
            },
        )

    def _post_rollout(self, payload: FlaggerPayload) -> Answer:
        from pytest_release.ledger.ledger import utc_now

        action = {"Succeeded": "promoted", "Failed": "rolled-back"}.get(payload.phase)
        if action is None:
            raise PayloadError(
                f"post-rollout with phase {payload.phase!r}: Flagger calls it with "
                "'Succeeded' (promoted) or 'Failed' (rolled back)"
            )
        record = {
            "controller": "flagger",
            "action": action,
            "phase": payload.phase,
            "canary": payload.canary,
            "checksum": payload.checksum,
            "recorded": utc_now(),
        }
        stages = self._pinned(payload) or self._recorded_stages(payload)
        entries: list[LedgerEntry] = [
            e for s in stages if (e := self.ledger.latest(payload.checksum, s)) is not None
        ]
        body = {"hook": "post-rollout", "canary": payload.canary, "release": payload.checksum}
        if not entries:
            return Answer(
                404,
                {
                    **body,
                    "message": f"Flagger {action} {payload.canary}, but the ledger has no run "
                    f"of {', '.join(stages) or 'any stage'} for release {payload.checksum!r} to "
                    "record it in",
                },
            )
        for entry in entries:
            self.ledger.update(replace(entry, details={**entry.details, "controller": record}))
        recorded = [e.stage for e in entries]
        return Answer(
            PASS_STATUS,
            {**body, "recorded": recorded, "controller": record,
             "message": f"recorded in {self.ledger.location}: {action} ({', '.join(recorded)})"},
        )  # fmt: skip


def read_canary_state(api: KubeApi, payload: FlaggerPayload) -> CanaryState:
    from pytest_release.controllers.flagger_status import read_canary

    return read_canary(api, payload.namespace, payload.name)


def make_handler(webhook: Webhook, server_output: ServerOutput) -> type[BaseHTTPRequestHandler]:
    from pytest_release.controllers.json_answer import JsonHandler

    class Handler(JsonHandler):
        output = server_output

        def answer_get(self) -> None:
            self.send_json(
                405 if self.path.strip("/") in HOOKS else 404,
                {"error": f"GET {self.path}: Flagger POSTs to /<hook> ({', '.join(HOOKS)})"},
            )

        def do_POST(self) -> None:
            hook = self.path.split("?")[0].strip("/")
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            if hook not in HOOKS:
                self.send_json(
                    404,
                    {"error": f"unknown webhook path {self.path!r}: POST /<hook>, one of "
                     f"{', '.join(HOOKS)}"},
                )  # fmt: skip
                return
            try:
                answer = webhook.answer(hook, parse_payload(body))
            except PayloadError as exc:
                self.send_json(400, {"error": f"{hook}: {exc}"})
                return
            except (LedgerError, PlatformError, OSError) as exc:
                # Not a verdict: Flagger counts it as a failed check and asks again.
                self.send_json(503, {"error": f"{hook}: {exc}"})
                return
            except Exception as exc:  # a bug here: an answer saying so, never a dropped call
                self.send_json(500, {"error": f"{hook}: {type(exc).__name__}: {exc}"})
                raise
            self.output.log(f"{hook} {answer.body.get('canary')} {answer.body.get('release')}: "
                f"{answer.status} {answer.body.get('verdict', '')}")  # fmt: skip
            self.send_json(answer.status, answer.body)

    return Handler


def _status_code(text: str) -> int:
    code = int(text)
    if code != 200 and not 400 <= code <= 599:
        raise argparse.ArgumentTypeError(
            f"{code} is neither 200 (Flagger advances) nor 400..599 (Flagger halts and counts "
            "a failed check); 201-399 are not allowed"
        )
    return code


def parser() -> argparse.ArgumentParser:
    p = server_parser(
        "python -m pytest_release webhook",
        "Answer Flagger's webhooks with the stages' verdicts.",
    )
    p.add_argument(
        "--stages", help="comma-separated stages the Canary's steps mirror (default: the "
        "canary stages below 100 %%, as `python -m pytest_release flagger`)"
    )  # fmt: skip
    p.add_argument(
        "--running-status", type=_status_code, default=WAIT_STATUS,
        help="answer while a stage runs or has no run yet (default 503)",
    )  # fmt: skip
    p.add_argument(
        "--insufficient-status", type=_status_code, default=WAIT_STATUS,
        help="answer when the judge lacked evidence (default 503)",
    )  # fmt: skip
    p.add_argument(
        "--pytest-arg", action="append", default=[],
        help="one more argument for the stages' pytest (repeatable)",
    )  # fmt: skip
    p.add_argument(
        "--log-dir", default=".pytest-release/webhook",
        help="where the stage runs' output goes (default .pytest-release/webhook)",
    )  # fmt: skip
    p.add_argument("--kubeconfig", help="to read the Canary's weight (default: $KUBECONFIG, "
                   "in-cluster)")  # fmt: skip
    p.add_argument("--context", help="kubeconfig context")
    return p


def main(argv: Sequence[str], rootdir: Path | None = None) -> int:
    from pytest_release.controllers.analysis_server import open_ledger
    from pytest_release.controllers.flagger_canary import flagger_stages
    from pytest_release.controllers.stage_runs import StageRuns
    from pytest_release.workflow.workflow import load

    args = parser().parse_args(argv)
    root = rootdir or Path.cwd()

    def cluster() -> KubeApi:
        from pytest_release.canary.platforms.kubernetes.client import KubeApi
        from pytest_release.canary.platforms.kubernetes.config import ClusterAccess

        return KubeApi(ClusterAccess(kubeconfig=args.kubeconfig, context=args.context), root)

    runs = StageRuns(root, args.release_config, args.pytest_arg, root / args.log_dir)
    try:
        config = load(args.release_config, root)
        stages = flagger_stages(config, comma_separated(args.stages))
        settings = WebhookSettings(
            stage_weights=tuple(
                (name, stage.rollout.weight) for name, stage in stages if stage.rollout
            ),
            defined_stages=frozenset(config.stages),
            running_status=args.running_status,
            insufficient_status=args.insufficient_status,
        )
        ledger = open_ledger(args.release_config, args.ledger, root)
        webhook = Webhook(settings, ledger, runs, cluster)
        server = http_server(args, config.secrets, partial(make_handler, webhook))
    except (ReleaseConfigError, LedgerError, ValueError, OSError) as exc:
        print(f"pytest_release webhook: {exc}", file=sys.stderr)
        return 2
    # SIGTERM (a pod stopped) ends the server like ^C: the stage runs it started end too.
    return serve(server, "webhook", stop=runs.stop, sigterm=True)
