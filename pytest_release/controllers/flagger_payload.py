"""What Flagger sends a webhook (``CanaryWebhookPayload`` of Flagger v1.36,
``pkg/apis/flagger/v1beta1/canary.go``), checked field by field.

Flagger POSTs JSON ``{"name", "namespace", "phase", "checksum", "metadata"}`` to every
webhook of a ``Canary``; the webhook's type is not in the payload (the URL path says it).
``checksum`` is Flagger's hash of the Canary's ``status.lastAppliedSpec`` and
``status.trackedConfigs``: it changes with every new revision of the target, so it is the
release id pytest-release records the stages under. ``metadata`` holds the webhook's own
``metadata`` (strings only, as the Canary CRD allows).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_release.errors import ReleaseError

HOOKS = ("pre-rollout", "rollout", "confirm-promotion", "post-rollout", "rollback")
# Flagger's phases (CanaryPhase); a payload naming another one is refused.
PHASES = (
    "Initializing",
    "Initialized",
    "Waiting",
    "Progressing",
    "WaitingPromotion",
    "Promoting",
    "Finalising",
    "Succeeded",
    "Failed",
    "Terminating",
    "Terminated",
)
MAX_BODY_BYTES = 64 * 1024


class PayloadError(ReleaseError):
    """A webhook request pytest-release cannot answer: the message says what was wrong, the
    value, and what Flagger sends."""


@dataclass(frozen=True)
class FlaggerPayload:
    name: str
    namespace: str
    phase: str
    checksum: str
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def canary(self) -> str:
        return f"{self.namespace}/{self.name}"


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise PayloadError(
            f"field {key!r} must be a non-empty string, got {json.dumps(value)}: Flagger "
            'sends {"name", "namespace", "phase", "checksum", "metadata"}'
        )
    return value


def parse_payload(body: bytes) -> FlaggerPayload:
    """The payload of one webhook request, or a :class:`PayloadError`."""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadError(
            f"the body has {len(body)} bytes, more than {MAX_BODY_BYTES}: not a Flagger payload"
        )
    try:
        data = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(
            f"the body is not JSON ({exc}): {body[:80]!r}; Flagger POSTs a JSON object"
        ) from None
    if not isinstance(data, dict):
        raise PayloadError(
            f"the body must be a JSON object, got {json.dumps(data)[:80]}: Flagger sends "
            '{"name", "namespace", "phase", "checksum", "metadata"}'
        )
    phase = _text(data, "phase")
    if phase not in PHASES:
        raise PayloadError(
            f"field 'phase' is {phase!r}, not a Flagger canary phase ({', '.join(PHASES)})"
        )
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise PayloadError(
            f"field 'metadata' must map strings to strings, got {json.dumps(metadata)[:120]}"
            " (the webhook's metadata in the Canary)"
        )
    return FlaggerPayload(
        name=_text(data, "name"),
        namespace=_text(data, "namespace"),
        phase=phase,
        checksum=_text(data, "checksum"),
        metadata=dict(metadata),
    )
