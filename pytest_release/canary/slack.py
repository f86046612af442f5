"""Slack notifications for rollout stages (incoming webhook, via httpx).

A message goes out when a stage passed, failed, was rolled back, or awaits approval, and
names the failing check with its value and threshold.  The webhook URL is a secret: it is
read from an environment variable (``webhook_env``, default ``SLACK_WEBHOOK_URL``) or,
discouraged, from the config (``webhook_url``); it never appears in a message, a log line
or an exception text, and neither does anything the stage's redactor masks.

Delivery never raises: a webhook that cannot be reached, answers an error or times out
makes :meth:`SlackNotifier.notify` return ``False`` and emit a redacted warning.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal, NotRequired, TypedDict, Unpack
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from pytest_release.canary.judge import CanaryVerdict, format_window
from pytest_release.config.types import PositiveDuration

SlackEvent = Literal["passed", "failed", "rolled-back", "awaiting-approval"]
EVENTS: tuple[SlackEvent, ...] = ("passed", "failed", "rolled-back", "awaiting-approval")
MASK = "***"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECTION_LIMIT = 2900  # Slack allows 3000 characters per section text
_HEADER_LIMIT = 150
_HTTP_LOGGERS = ("httpx", "httpcore")

log = logging.getLogger(__name__)

_HEADLINES: Mapping[SlackEvent, tuple[str, str]] = {
    "passed": (":white_check_mark:", "passed"),
    "failed": (":x:", "failed"),
    "rolled-back": (":rewind:", "rolled back"),
    "awaiting-approval": (":hourglass_flowing_sand:", "is awaiting approval"),
}


class SlackConfig(BaseModel):
    """The ``slack`` table of a rollout gate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook_env: str = "SLACK_WEBHOOK_URL"
    """Environment variable holding the incoming-webhook URL."""
    webhook_url: SecretStr | None = None
    """The webhook URL itself (discouraged: keep it in the environment)."""
    channel: str | None = None
    """Channel to post to, e.g. '#releases'; unset: the webhook's own channel."""
    username: str | None = None
    """Sender name shown in Slack; unset: the webhook's."""
    icon_emoji: str | None = None
    """Sender icon, e.g. ':rocket:'; unset: the webhook's."""
    events: tuple[SlackEvent, ...] = EVENTS
    """Stage outcomes that are posted: any of 'passed', 'failed', 'rolled-back', 'awaiting-approval'
    (default: all)."""
    timeout: PositiveDuration = 5.0
    """Seconds before giving up."""

    @field_validator("webhook_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_NAME.match(value):
            raise ValueError(
                f"webhook_env must name an environment variable such as SLACK_WEBHOOK_URL, "
                f"got {value!r}"
            )
        return value

    # webhook_url is deliberately not validated here: the config error report echoes the
    # bad value, and this value is a secret.  notify() reports an unusable URL instead.


class _MaskRecords(logging.Filter):
    """Rewrites log records of the HTTP client so the webhook URL cannot leak
    (httpx logs every request's URL at INFO)."""

    def __init__(self, mask: Callable[[str], str]) -> None:
        super().__init__()
        self.mask = mask

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.mask(record.getMessage())
        record.args = None
        return True


class SlackMessage(TypedDict):
    """What a notification is about: the keyword arguments of
    :meth:`SlackNotifier.notify` and :meth:`SlackNotifier.build_payload`, declared once."""

    stage: str
    release_id: str
    image: str | None
    verdict: NotRequired[CanaryVerdict | None]
    details: NotRequired[str]


class SlackNotifier:
    """Posts stage events to a Slack incoming webhook (see the module docstring)."""

    def __init__(
        self,
        config: SlackConfig,
        redact: Callable[[str], str],
        *,
        environ: Mapping[str, str] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        import os

        self.config = config
        self._redact = redact
        self._environ = os.environ if environ is None else environ
        self._warn = warn or log.warning
        self.last_error: str | None = None

    # -- secrets -------------------------------------------------------------------------
    def webhook_url(self) -> str | None:
        """The URL to post to: the environment variable first, then the config value."""
        from_env = self._environ.get(self.config.webhook_env, "").strip()
        if from_env:
            return from_env
        if self.config.webhook_url is not None:
            return self.config.webhook_url.get_secret_value()
        return None

    def _secret_parts(self) -> list[str]:
        urls = [self._environ.get(self.config.webhook_env, "").strip()]
        if self.config.webhook_url is not None:
            urls.append(self.config.webhook_url.get_secret_value())
        parts: list[str] = []
        for url in filter(None, urls):
            without_scheme = url.split("://", 1)[-1]
            parts.extend((url, without_scheme))
            try:
                split = urlsplit(url)
                path, query = split.path, split.query
            except ValueError:  # unparsable: treat everything after the host as secret
                path, _, query = without_scheme.partition("?")
                path = path.partition("/")[2]
            # The path (and query) carry the token: mask them even when quoted alone.
            parts.extend(piece for piece in (path, query) if len(piece) >= 8)
            segments = [seg for seg in path.split("/") if seg]
            parts.extend(
                seg
                for i, seg in enumerate(segments)
                if len(seg) >= 8 and (i == len(segments) - 1 or any(c.isdigit() for c in seg))
            )
        return sorted(set(parts), key=len, reverse=True)

    def redact(self, text: str) -> str:
        """The stage redactor, plus the webhook URL and its token-bearing parts."""
        for part in self._secret_parts():
            text = text.replace(part, MASK)
        return self._redact(text)

    # -- message -------------------------------------------------------------------------
    def build_payload(self, event: SlackEvent, **message: Unpack[SlackMessage]) -> dict[str, Any]:
        """The JSON body (``text`` fallback + Block Kit ``blocks``), already redacted."""
        stage, release_id, image = message["stage"], message["release_id"], message["image"]
        verdict, details = message.get("verdict"), message.get("details", "")
        emoji, phrase = _HEADLINES[event]
        headline = f"Stage {stage} {phrase}"
        reasons = _reasons(event, verdict)
        fields = [f"*Release*\n`{_escape(self.redact(release_id))}`"]
        if image:
            fields.append(f"*Image*\n`{_escape(self.redact(image))}`")
        if verdict is not None:
            fields.append(f"*Verdict*\n{verdict.verdict}")
            fields.append(f"*Window*\n{format_window(verdict.window_start, verdict.window_end)}")
        blocks: list[dict[str, Any]] = [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": _truncate(self.redact(headline), _HEADER_LIMIT),
                    "emoji": True,
                },
            },
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": f} for f in fields],
            },
        ]
        if reasons:
            title = "*Checks*" if event == "passed" else "*Why*"
            body = "\n".join(f"• {_escape(self.redact(r))}" for r in reasons)
            blocks.append(
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": _truncate(f"{title}\n{body}")},
                }
            )
        if details.strip():
            blocks.append(
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": _truncate(_escape(self.redact(details.strip()))),
                    },
                }
            )
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": "sent by pytest-release"}],
            }
        )
        summary = f"{emoji} {headline} (release {release_id})"
        if reasons and event != "passed":
            summary += f": {reasons[0]}"
        payload: dict[str, Any] = {
            "text": _truncate(_escape(self.redact(summary))),
            "blocks": blocks,
        }
        for key in ("channel", "username", "icon_emoji"):
            value = getattr(self.config, key)
            if value:
                payload[key] = value
        return payload

    # -- delivery ------------------------------------------------------------------------
    def notify(self, event: SlackEvent, **message: Unpack[SlackMessage]) -> bool:
        """Post the event.  ``True`` when Slack accepted it (or the event is switched off
        in ``events``); ``False`` when it should have gone out and did not (no URL
        configured, connection error, non-2xx answer, timeout).  Never raises."""
        stage = message["stage"]
        self.last_error = None
        try:
            if event not in self.config.events:
                return True
            url = self.webhook_url()
            if url is None:
                return self._failed(
                    event,
                    stage,
                    f"environment variable {self.config.webhook_env} is not set (export the "
                    "Slack incoming-webhook URL in it, or name another variable with "
                    "slack.webhook_env)",
                )
            if not url.startswith(("https://", "http://")):
                source = (
                    f"environment variable {self.config.webhook_env}"
                    if self._environ.get(self.config.webhook_env, "").strip()
                    else "slack.webhook_url"
                )
                return self._failed(
                    event,
                    stage,
                    f"the webhook URL in {source} is not an http(s) URL "
                    "(value not shown: secret); it should look like "
                    "https://hooks.slack.com/...",
                )
            payload = self.build_payload(event, **message)
            return self._post(event, stage, url, payload)
        except Exception as exc:  # never let a notification break a rollout
            return self._failed(event, stage, f"{type(exc).__name__}: {exc}")

    def _post(self, event: SlackEvent, stage: str, url: str, payload: dict[str, Any]) -> bool:
        import httpx

        timeout = self.config.timeout
        try:
            with self._masked_http_logs(), httpx.Client(timeout=timeout) as client:
                response = client.post(url, json=payload, headers={"User-Agent": "pytest-release"})
        except httpx.TimeoutException:
            return self._failed(event, stage, f"the webhook did not answer within {timeout:g} s")
        except httpx.HTTPError as exc:
            return self._failed(event, stage, f"{type(exc).__name__}: {exc}")
        if response.is_success:
            return True
        body = response.text.strip().replace("\n", " ")[:200]
        return self._failed(
            event, stage, f"the webhook answered HTTP {response.status_code}: {body or '(empty)'}"
        )

    @contextmanager
    def _masked_http_logs(self) -> Iterator[None]:
        mask = _MaskRecords(self.redact)
        loggers = [logging.getLogger(name) for name in _HTTP_LOGGERS]
        for logger in loggers:
            logger.addFilter(mask)
        try:
            yield
        finally:
            for logger in loggers:
                logger.removeFilter(mask)

    def _failed(self, event: SlackEvent, stage: str, reason: str) -> bool:
        try:
            message = self.redact(
                f"Slack notification '{event}' for stage {stage} not sent: {reason}"
            )
        except Exception:  # the redactor failed: say less rather than leak
            message = f"Slack notification '{event}' for stage {stage} not sent"
        self.last_error = message
        try:
            self._warn(message)
        except Exception:  # a broken warn callback must not raise either
            log.warning(message)
        return False


def _reasons(event: SlackEvent, verdict: CanaryVerdict | None) -> list[str]:
    if verdict is None:
        return []
    if event == "passed":
        return [c.message for c in verdict.checks]
    failing = [c.message for c in verdict.checks if c.verdict == "fail"]
    if failing:
        return failing
    if verdict.verdict == "insufficient":
        return [c.message for c in verdict.checks if c.verdict == "insufficient"]
    return []


def _escape(text: str) -> str:
    """Slack mrkdwn control characters (https://api.slack.com/reference/surfaces/formatting)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _truncate(text: str, limit: int = _SECTION_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
