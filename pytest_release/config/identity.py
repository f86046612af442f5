"""Deployment identity: what of a deployment an environment acts on, so that no
environment acts on production's (or another environment's) by mistake.

A gate that deploys (a canary gate's platform and router) declares *claims*: the things a
stage running it takes over — a local platform's state directory (its replicas, its
HAProxy and admin socket), HAProxy's front port, a Kubernetes Deployment or the pods of an
``app`` label in a namespace, a Cloud Run service.  Each platform and router config model
says which of its keys make up a claim (``deployment_claims``), so the check below is
written once: two environments (production is the stages without ``target``) that claim
the same thing are a configuration error at load time, naming the keys and their values.

What cannot be seen in the configuration is not checked: two kubeconfig contexts that
reach the same cluster, or a relative and an absolute ``state_dir`` naming one directory.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class DeploymentClaim:
    """One thing of a deployment that only one environment may act on.

    ``what`` names it (``"HAProxy front port"``); ``keys`` are the settings that make it up,
    as the user writes them under the gate (``("router.port", 18000)``); a value of ``None``
    is a setting left unset (e.g. no kubeconfig: the default cluster).  Two claims are the
    same thing when ``what`` and the values are equal; ``fix`` says how to give an
    environment its own (``{environment}`` is replaced by its name).
    """

    what: str
    keys: tuple[tuple[str, object], ...]
    fix: str

    @property
    def identity(self) -> tuple[str, tuple[object, ...]]:
        return self.what, tuple(value for _, value in self.keys)

    def describe(self) -> str:
        return ", ".join(
            f"{key} unset" if value is None else f"{key} = {value!r}" for key, value in self.keys
        )


def same_path(path: str) -> str:
    """A directory setting as a claim compares it (``./a/b/`` and ``a/b`` are one)."""
    return posixpath.normpath(path.replace("\\", "/"))


@dataclass(frozen=True)
class _Owner:
    environment: str | None  # None: production
    gate: str

    @property
    def key(self) -> str:
        if self.environment is None:
            return f"gates.{self.gate}"
        return f"environments.{self.environment}.gates.{self.gate}"

    @property
    def name(self) -> str:
        return "production" if self.environment is None else f"environment {self.environment!r}"


def identity_problems(
    claims: Mapping[str | None, Mapping[str, Sequence[DeploymentClaim]]],
) -> list[str]:
    """One line per thing two environments both claim.  ``claims``: environment (None:
    production, first) -> gate -> the gate's claims in that environment."""
    owners: dict[tuple[str, tuple[object, ...]], _Owner] = {}
    problems: list[str] = []
    reported: set[tuple[str | None, str | None, tuple[str, tuple[object, ...]]]] = set()
    for environment, gates in claims.items():
        mine: dict[tuple[str, tuple[object, ...]], _Owner] = {}
        for gate, claim in _flatten(gates):
            identity = claim.identity
            first = owners.get(identity)
            if first is not None and first.environment != environment:
                pair = (first.environment, environment, identity)
                if pair not in reported:
                    reported.add(pair)
                    problems.append(_problem(_Owner(environment, gate), first, claim))
            mine.setdefault(identity, _Owner(environment, gate))
        for identity, owner in mine.items():
            owners.setdefault(identity, owner)
    return problems


def _flatten(
    gates: Mapping[str, Sequence[DeploymentClaim]],
) -> Iterable[tuple[str, DeploymentClaim]]:
    for gate, gate_claims in gates.items():
        for claim in gate_claims:
            yield gate, claim


def _problem(owner: _Owner, first: _Owner, claim: DeploymentClaim) -> str:
    # Production comes first, so ``owner`` (the later one) is an environment.
    return (
        f"  {owner.key}: {claim.describe()} names the {claim.what} of {first.name} too "
        f"({first.key}): a stage targeting {owner.environment!r} would deploy to and switch "
        f"the deployment of {first.name}; an environment shares no deployment with another: give "
        f"{owner.key} " + claim.fix.format(environment=owner.environment or "production")
    )
