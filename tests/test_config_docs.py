"""The configuration reference cannot drift from the config models."""

from __future__ import annotations

from pathlib import Path

from pytest_release.config.docs import model_sections, render

DOC = Path(__file__).parent.parent / "docs" / "configuration.md"


def test_every_config_field_has_a_description() -> None:
    undocumented = [
        f"{prefix}{name} ({model.__name__})"
        for _, model, prefix, skip in model_sections()
        for name, field in model.model_fields.items()
        if name not in skip and not (field.description or "").strip()
    ]
    assert not undocumented, f"config fields without a description: {undocumented}"


def test_reference_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/configuration.md is stale: run `python -m pytest_release.config.docs "
        "> docs/configuration.md`"
    )


def test_reference_names_every_gate_kind() -> None:
    text = render()
    for kind in ("lint", "newman", "docker", "e2e", "canary"):
        assert f"of kind `{kind}`" in text
