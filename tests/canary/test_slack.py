"""Slack notifications against a real HTTP receiver on 127.0.0.1 that records requests."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import ValidationError

from pytest_release.canary.judge import Judge, JudgeConfig
from pytest_release.canary.slack import SlackConfig, SlackNotifier
from pytest_release.report.redact import Redactor
from tests.canary.judge_support import T0, probes, status, traffic
from tests.support.http_server import QuietHandler, serving

TOKEN_PATH = "/services/T0000/B0000/Xyz123SecretWebhookToken"
GITHUB_TOKEN = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
DEPLOY_SECRET = "hunter2-deploy-secret"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


@dataclass
class Receiver:
    """A webhook stand-in: records every POST and answers ``status`` (or hangs until
    ``release`` is set when ``hang`` is true)."""

    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)
    status: int = 200
    answer: bytes = b"ok"
    hang: bool = False
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{TOKEN_PATH}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            rec = state["receiver"]
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            rec.requests.append(Received(self.path, dict(self.headers.items()), body))
            if rec.hang:
                rec.release.wait(10)
            self.answer(rec.status, rec.answer, "text/plain")

    with serving(Handler) as server:
        state["receiver"] = rec = Receiver(server)
        try:
            yield rec
        finally:
            rec.release.set()  # a hanging request ends before the server stops


def notifier(url: str | None, *, warnings: list[str] | None = None, **config: Any) -> SlackNotifier:
    environ = {"DEPLOY_TOKEN": DEPLOY_SECRET}
    if url is not None:
        environ["SLACK_WEBHOOK_URL"] = url
    redact = Redactor.from_env(["SLACK_WEBHOOK_URL", "DEPLOY_TOKEN"], environ)
    return SlackNotifier(
        SlackConfig.model_validate(config),
        redact,
        environ=environ,
        warn=None if warnings is None else warnings.append,
    )


def failing_verdict() -> Any:
    samples = [
        # 20 % errors: one interval of the judge's evidence is enough to fail it.
        *traffic(T0, T0 + 60, "canary", fail=lambda i: i % 5 == 0),
        *traffic(T0, T0 + 60, "stable", per_second=6.0),
        *probes(T0, T0 + 60),
    ]
    return Judge(JudgeConfig()).judge_interval(samples, [status(T0)], T0, T0 + 60)


def test_failed_stage_message_names_check_value_and_threshold(receiver: Receiver) -> None:
    slack = notifier(receiver.url, channel="#releases")
    assert slack.notify(
        "failed",
        stage="canary-1",
        release_id="abc1234",
        image="local/shop:release-42",
        verdict=failing_verdict(),
    )
    assert slack.last_error is None
    [request] = receiver.requests
    assert request.path == TOKEN_PATH
    assert request.headers["Content-Type"] == "application/json"
    payload = request.json
    assert payload["channel"] == "#releases"
    assert payload["text"].startswith(":x: Stage canary-1 failed (release abc1234): ")
    assert "canary error rate 20.0% &gt; 1.0%" in payload["text"]
    assert "12:00:00-12:01:00 UTC" in payload["text"]
    assert "(n=120" in payload["text"]
    header = payload["blocks"][0]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Stage canary-1 failed", "emoji": True},
    }
    fields = [f["text"] for f in payload["blocks"][1]["fields"]]
    assert fields == [
        "*Release*\n`abc1234`",
        "*Image*\n`local/shop:release-42`",
        "*Verdict*\nfail",
        "*Window*\n12:00:00-12:01:00 UTC",
    ]
    why = payload["blocks"][2]["text"]["text"]
    assert why.startswith("*Why*\n• canary error rate 20.0% &gt; 1.0%")


@pytest.mark.parametrize(
    ("event", "headline", "emoji"),
    [
        ("passed", "Stage canary-2 passed", ":white_check_mark:"),
        ("failed", "Stage canary-2 failed", ":x:"),
        ("rolled-back", "Stage canary-2 rolled back", ":rewind:"),
        ("awaiting-approval", "Stage canary-2 is awaiting approval", ":hourglass_flowing_sand:"),
    ],
)
def test_every_event_is_delivered(
    receiver: Receiver, event: Any, headline: str, emoji: str
) -> None:
    assert notifier(receiver.url).notify(
        event, stage="canary-2", release_id="r1", image=None, details="see the run"
    )
    [request] = receiver.requests
    assert request.json["blocks"][0]["text"]["text"] == headline
    assert request.json["text"] == f"{emoji} {headline} (release r1)"
    assert request.json["blocks"][2]["text"]["text"] == "see the run"


def test_secrets_never_reach_the_message(receiver: Receiver) -> None:
    details = (
        f"deploy used token {GITHUB_TOKEN} and {DEPLOY_SECRET}; "
        f"webhook was {receiver.url}, path {TOKEN_PATH}"
    )
    slack = notifier(receiver.url)
    assert slack.notify(
        "rolled-back",
        stage="canary-1",
        release_id="abc1234",
        image=f"local/shop:{DEPLOY_SECRET}",
        verdict=failing_verdict(),
        details=details,
    )
    [request] = receiver.requests
    body = request.body.decode()
    for secret in (GITHUB_TOKEN, DEPLOY_SECRET, receiver.url, TOKEN_PATH, "Xyz123SecretWebhook"):
        assert secret not in body
    text = request.json["blocks"][-2]["text"]["text"]
    assert text == "deploy used token *** and ***; webhook was ***, path ***"


def test_mrkdwn_control_characters_are_escaped(receiver: Receiver) -> None:
    assert notifier(receiver.url).notify(
        "failed", stage="s", release_id="r", image=None, details="<!channel> & <b>"
    )
    assert receiver.requests[0].json["blocks"][2]["text"]["text"] == (
        "&lt;!channel&gt; &amp; &lt;b&gt;"
    )


def test_url_from_config_when_the_environment_has_none(receiver: Receiver) -> None:
    slack = notifier(None, webhook_url=receiver.url)
    assert slack.notify("passed", stage="s", release_id="r", image=None)
    assert len(receiver.requests) == 1
    assert receiver.url not in repr(slack.config)


def test_events_can_be_switched_off(receiver: Receiver) -> None:
    slack = notifier(receiver.url, events=["failed"])
    assert slack.notify("passed", stage="s", release_id="r", image=None)
    assert receiver.requests == []


def test_http_client_logs_do_not_show_the_url(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert notifier(receiver.url).notify("passed", stage="s", release_id="r", image=None)
    requests_logged = [r for r in caplog.records if r.name == "httpx"]
    assert requests_logged, "httpx logs each request at INFO; the filter must see it"
    assert "HTTP Request: POST ***" in caplog.text
    assert "Xyz123SecretWebhookToken" not in caplog.text
    # The filter is removed afterwards.
    assert logging.getLogger("httpx").filters == []


class TestFailuresDoNotRaise:
    def test_server_error(self, receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
        receiver.status = 500
        receiver.answer = f"boom at {TOKEN_PATH}".encode()
        slack = notifier(receiver.url)
        with caplog.at_level(logging.WARNING, logger="pytest_release.canary.slack"):
            assert not slack.notify("failed", stage="canary-1", release_id="r", image=None)
        assert len(receiver.requests) == 1
        assert slack.last_error == (
            "Slack notification 'failed' for stage canary-1 not sent: "
            "the webhook answered HTTP 500: boom at ***"
        )
        assert slack.last_error in caplog.text
        assert "Xyz123" not in caplog.text

    def test_port_closed(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}{TOKEN_PATH}"
        warnings: list[str] = []
        slack = notifier(url, warnings=warnings)
        assert not slack.notify("failed", stage="canary-1", release_id="r", image=None)
        [warning] = warnings
        assert warning.startswith("Slack notification 'failed' for stage canary-1 not sent: ")
        assert "ConnectError" in warning
        assert "Xyz123" not in warning

    def test_timeout(self, receiver: Receiver) -> None:
        receiver.hang = True
        warnings: list[str] = []
        slack = notifier(receiver.url, warnings=warnings, timeout=0.3)
        assert not slack.notify("failed", stage="canary-1", release_id="r", image=None)
        assert warnings == [
            "Slack notification 'failed' for stage canary-1 not sent: "
            "the webhook did not answer within 0.3 s"
        ]

    def test_no_url_configured(self) -> None:
        warnings: list[str] = []
        slack = notifier(None, warnings=warnings)
        assert not slack.notify("failed", stage="canary-1", release_id="r", image=None)
        assert "environment variable SLACK_WEBHOOK_URL is not set" in warnings[0]

    def test_unusable_url_and_broken_warn_callback(self) -> None:
        def explode(message: str) -> None:
            raise RuntimeError(message)

        slack = SlackNotifier(
            SlackConfig(),
            Redactor(),
            environ={"SLACK_WEBHOOK_URL": "http://[::1/Xyz123SecretWebhookToken"},
            warn=explode,
        )
        assert not slack.notify("failed", stage="s", release_id="r", image=None)
        assert slack.last_error is not None
        assert "Xyz123" not in slack.last_error


class TestConfig:
    def test_a_url_that_is_not_http_is_reported_at_send_time_without_echoing_it(self) -> None:
        # Config errors echo the bad value, so the secret is checked when sending.
        warnings: list[str] = []
        slack = SlackNotifier(
            SlackConfig.model_validate({"webhook_url": "hooks.slack.com/services/SECRETPART"}),
            Redactor(),
            environ={},
            warn=warnings.append,
        )
        assert "SECRETPART" not in repr(slack.config)
        assert not slack.notify("failed", stage="s", release_id="r", image=None)
        assert warnings == [
            "Slack notification 'failed' for stage s not sent: the webhook URL in "
            "slack.webhook_url is not an http(s) URL (value not shown: secret); it should "
            "look like https://hooks.slack.com/..."
        ]

    def test_bad_env_name_and_unknown_keys(self) -> None:
        with pytest.raises(ValidationError, match="must name an environment variable"):
            SlackConfig.model_validate({"webhook_env": "https://hooks.slack.com/x"})
        with pytest.raises(ValidationError, match="chanel\n  Extra inputs are not permitted"):
            SlackConfig.model_validate({"chanel": "#x"})
        with pytest.raises(ValidationError, match=r"events\.0"):
            SlackConfig.model_validate({"events": ["exploded"]})
