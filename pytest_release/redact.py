"""Keep secrets out of every report: JUnit, annotations, step summary, ledger, Slack."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MASK = "***"

# Shapes of credentials that must never be printed, whether configured or not.
_PATTERNS = (
    re.compile(r"https://hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/[^\s\"'<>]+"),
    re.compile(r"(?i)(?<=bearer )[A-Za-z0-9\-._~+/]{8,}=*"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{8,}"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
)
_MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words


@dataclass(frozen=True)
class Redactor:
    """Masks configured secret values and anything shaped like a token or webhook URL."""

    values: tuple[str, ...] = ()

    @classmethod
    def from_env(
        cls,
        names: Iterable[str],
        environ: Mapping[str, str] | None = None,
        extra_values: Iterable[str] = (),
    ) -> Redactor:
        env = os.environ if environ is None else environ
        values = [env[name] for name in names if env.get(name)]
        values.extend(v for v in extra_values if v)
        usable = {v for v in values if len(v) >= _MIN_SECRET_LENGTH}
        # Longest first, so a secret containing another is masked whole.
        return cls(values=tuple(sorted(usable, key=len, reverse=True)))

    def __call__(self, text: str) -> str:
        for value in self.values:
            if value in text:
                text = text.replace(value, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(MASK, text)
        return text
