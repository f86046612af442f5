"""Find secrets baked into an image's environment or labels (pattern based).

A finding never carries the value itself: only where it is, its length and why it looks
like a secret, so the report can show it redacted.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from pytest_release.report.redact import Redactor

# Our own labels (run id, stage, release) are not the image author's and never secret.
OWN_LABEL_PREFIX = "pytest-release."
_SLACK_WEBHOOK = re.compile(r"https://hooks\.slack(?:-gov)?\.com/")
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
_URL_PASSWORD = re.compile(r"://[^/\s:@]+:[^/\s@]+@")


@dataclass(frozen=True)
class SecretFinding:
    where: Literal["ENV", "LABEL"]
    name: str
    length: int
    reason: str

    def describe(self) -> str:
        return f"{self.where} {self.name}=*** ({self.length} chars; {self.reason})"


def _value_shape(value: str) -> str | None:
    if _SLACK_WEBHOOK.search(value):
        return "value is a Slack webhook URL"
    if _PRIVATE_KEY.search(value):
        return "value is a private key"
    if _URL_PASSWORD.search(value):
        return "value is a URL with a password"
    if Redactor()(value) != value:
        return "value is shaped like a token"
    return None


def name_matches(name: str, patterns: Iterable[str]) -> str | None:
    upper = name.upper()
    for pattern in patterns:
        if fnmatch.fnmatchcase(upper, pattern.upper()):
            return pattern
    return None


def parse_env(entries: Iterable[str]) -> dict[str, str]:
    """``["A=1", "B"]`` (Docker's Config.Env) as a mapping."""
    env: dict[str, str] = {}
    for entry in entries:
        name, _, value = entry.partition("=")
        env[name] = value
    return env


def scan(
    env: Mapping[str, str],
    labels: Mapping[str, str],
    name_patterns: Iterable[str],
    allowed: Iterable[str] = (),
) -> list[SecretFinding]:
    """Entries with a non-empty value whose name matches ``name_patterns`` or whose value
    is shaped like a credential (Slack webhook, token, private key, URL password)."""
    patterns = tuple(name_patterns)
    exempt = {name.upper() for name in allowed}
    findings: list[SecretFinding] = []
    sources: list[tuple[Literal["ENV", "LABEL"], Mapping[str, str]]] = [
        ("ENV", env),
        ("LABEL", {k: v for k, v in labels.items() if not k.startswith(OWN_LABEL_PREFIX)}),
    ]
    for where, entries in sources:
        for name, value in sorted(entries.items()):
            if not value or name.upper() in exempt:
                continue
            shape = _value_shape(value)
            pattern = name_matches(name, patterns)
            if shape is not None:
                findings.append(SecretFinding(where, name, len(value), shape))
            elif pattern is not None:
                findings.append(SecretFinding(where, name, len(value), f"name matches {pattern}"))
    return findings
