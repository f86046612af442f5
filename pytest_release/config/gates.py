"""The gates of a configuration by name, each validated with the model of its kind when
first read (a stage that does not use a kind never imports it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from pytest_release.config.errors import format_errors
from pytest_release.config.lazy import BuiltOnRead
from pytest_release.errors import ReleaseConfigError

if TYPE_CHECKING:
    from pytest_release.config.identity import DeploymentClaim
    from pytest_release.config.tables import GateConfig


class GateTables(BuiltOnRead["GateConfig"]):
    """Gates by name, each validated with the model of its kind.  A built-in gate the
    configuration leaves as it is (its default table, valid by construction) is validated
    when first read: a stage that does not use its kind never imports that kind."""

    def __init__(
        self, source: str, kinds: Mapping[str, type[GateConfig]], prefix: str = "gates"
    ) -> None:
        super().__init__()
        self._source = source
        self._kinds = kinds
        self._prefix = prefix
        self._tables: dict[str, Mapping[str, Any]] = {}

    def add(self, name: str, table: Mapping[str, Any], *, validate: bool) -> None:
        self._tables[name] = table
        if validate:
            self._built[name] = self._validate(name)

    def settings_from(self, name: str) -> str | None:
        """The gate whose settings gate ``name`` uses (``settings_from``, read from its
        table without validating it), or None."""
        other = self._tables[name].get("settings_from")
        return other if isinstance(other, str) else None

    def _validate(self, name: str) -> GateConfig:
        table = self._tables[name]
        try:
            return self._kinds[table.get("kind", "tests")].model_validate(table)
        except ValidationError as exc:
            raise ReleaseConfigError(
                format_errors(self._source, f"{self._prefix}.{name}", exc)
            ) from None

    def _keys(self) -> Mapping[str, Mapping[str, Any]]:
        return self._tables

    def _build(self, name: str) -> GateConfig:
        if name not in self._tables:
            raise KeyError(name)
        return self._validate(name)


def deployment_claims(
    runs: Iterable[tuple[str | None, Sequence[str]]],
    tables: Mapping[str | None, Mapping[str, GateConfig]],
) -> dict[str | None, dict[str, tuple[DeploymentClaim, ...]]]:
    """Per environment (None: production, first), what the gates its stages run (and the
    gates they take settings from) deploy to.  ``runs``: each stage's target and gates;
    ``tables``: each environment's gates.  Only gates validated at load time can claim
    anything: a built-in gate left as it is deploys nowhere (it has no platform), and is
    not validated here, so a stage that does not use its kind never imports it."""
    runs = list(runs)
    claims: dict[str | None, dict[str, tuple[DeploymentClaim, ...]]] = {}
    for environment, gates in tables.items():
        if not isinstance(gates, GateTables):
            continue
        used = {g for target, names in runs if target == environment for g in names}
        used &= set(gates)
        used |= {o for g in used if (o := gates.settings_from(g)) is not None and o in gates}
        claimed = used & set(gates.built())
        claims[environment] = {g: gates[g].deployment_claims() for g in gates if g in claimed}
    return claims
