"""The configuration reference cannot drift from the config models."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from pytest_release.config.docs import field_descriptions, model_sections, render

DOC = Path(__file__).parent.parent / "docs" / "configuration.md"


def test_every_config_field_has_a_description() -> None:
    undocumented = [
        f"{prefix}{name} ({model.__name__})"
        for _, model, prefix, skip in model_sections()
        for name, description in field_descriptions(model).items()
        if name not in skip and not description.strip()
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


class _Base(BaseModel):
    inherited: int = 1
    """Kept by
    subclasses."""
    redeclared: int = 2
    """The base's text."""


class _Child(_Base):
    redeclared: int = Field(3, description="The subclass's own text.")
    described: str = Field("x", description="From Field.")
    documented: float = 0.5
    """From the docstring | folded."""


def test_descriptions_come_from_attribute_docstrings_along_the_mro() -> None:
    assert field_descriptions(_Child) == {
        "inherited": "Kept by subclasses.",
        "redeclared": "The subclass's own text.",
        "described": "From Field.",
        "documented": "From the docstring | folded.",
    }
