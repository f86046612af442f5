"""The canary gate's ``judge`` table with the registered evidence sources.

:func:`judge_model` builds, once, the model the gate validates its ``judge`` table with:
the engine's :class:`~pytest_release.canary.judge.JudgeConfig` whose ``evidence`` names
only registered sources (entry points ``pytest_release.evidence``, built-ins and
plug-ins alike), plus one optional table ``judge.<name>`` per registered source with a
config model, validated by that model (Prometheus' ``judge.prometheus`` is one).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError, create_model, field_validator, model_validator

from pytest_release.canary.judge import JudgeConfig
from pytest_release.canary.registry import EVIDENCE_GROUP, registry, unknown_evidence
from pytest_release.errors import ReleaseConfigError


class RegisteredJudgeConfig(JudgeConfig):
    """``JudgeConfig`` whose ``evidence`` names registered sources, each with its table."""

    @field_validator("evidence")
    @classmethod
    def _registered(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        found = registry().evidence
        for name in value:
            if name not in found:
                raise ValueError(unknown_evidence(name, found))
            if found[name].kind == "alerts":
                raise ValueError(
                    f"{name!r} is not named in judge.evidence: its table judge.{name} switches "
                    "it on (a matching alert fails the look at once)"
                )
        return value

    @model_validator(mode="before")
    @classmethod
    def _tables_needed(cls, data: Any) -> Any:
        """A named source's table: as given, or its model's defaults when it has one for
        every key; else one error saying to add it."""
        if not isinstance(data, dict) or not isinstance(data.get("evidence"), list | tuple):
            return data
        found = registry().evidence
        for name in data["evidence"]:
            plugin = found.get(name) if isinstance(name, str) else None
            if plugin is None or plugin.kind != "counted" or plugin.config is None:
                continue
            if data.get(name) is not None:
                continue
            try:
                plugin.config()
            except ValidationError:
                example = plugin.example or f"a [...judge.{name}] table"
                raise ValueError(
                    f"judge.evidence names {name!r} but judge.{name} is not set: add {example}"
                ) from None
            data = {**data, name: {}}
        return data


def judge_model() -> type[JudgeConfig]:
    """The gate's judge table: :class:`RegisteredJudgeConfig` with one optional
    ``judge.<name>`` table per registered evidence source that has a config model."""
    fixed = JudgeConfig.model_fields
    tables: dict[str, Any] = {}
    for name, plugin in registry().evidence.items():
        if plugin.config is None:
            continue
        if name in fixed:
            raise ReleaseConfigError(
                f"evidence source {name!r} (entry point group {EVIDENCE_GROUP!r}) would have "
                f"the table judge.{name}, which is a key of the judge table already: register "
                "it under another name"
            )
        described = (
            f"The {name!r} evidence source: {plugin.summary}. Required when judge.evidence "
            f"names {name!r}."
            if plugin.kind == "counted"
            else f"{plugin.summary[:1].upper()}{plugin.summary[1:]}."
        )
        tables[name] = (plugin.config | None, Field(default=None, description=described))
    model: type[JudgeConfig] = create_model(
        "JudgeConfig", __base__=RegisteredJudgeConfig, __module__=__name__, **tables
    )
    model.__doc__ = JudgeConfig.__doc__
    return model
