"""The Cloud Run service as its own traffic router: the split between the main and the
canary revision is the service's ``traffic`` (percent per revision), and what it applies
is read back from ``traffic_statuses`` (the split Cloud Run serves)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Unpack

from pytest_release.canary.platforms.cloud_run.config import CAPABILITIES, CloudRunRouterConfig
from pytest_release.canary.platforms.cloud_run.platform import CloudRunPlatform, Traffic
from pytest_release.canary.router import MemberChange, VersionCount, Weights, check_weights
from pytest_release.errors import RouterError

if TYPE_CHECKING:
    from google.cloud import run_v2

    from pytest_release.canary.platform import Group, PlatformStatus


class CloudRunRouter:
    """:class:`~pytest_release.canary.router.TrafficRouter` over a service's traffic;
    members are revision names (the main one tagged ``stable_tag``, the canary one
    ``canary_tag``)."""

    def __init__(self, platform: CloudRunPlatform, config: CloudRunRouterConfig | None) -> None:
        self.platform = platform
        self.config = config
        self._url = config.url if config is not None else None
        self.describe = f"the traffic split of {platform.name}"

    capabilities = CAPABILITIES

    def members_for(self, status: PlatformStatus, group: Group) -> tuple[str, ...]:
        """The revisions of a group (a revision's instances are ``revision#i``)."""
        return tuple(dict.fromkeys(r.name.split("#")[0] for r in status.group(group)))

    def backend_problems(self, status: PlatformStatus) -> list[str]:
        return []

    def counters(self) -> dict[Group, VersionCount] | None:
        return None  # Cloud Run's request counts are in Cloud Monitoring, not read here

    def server_endpoints(self) -> dict[str, str]:
        return {}  # answers name no server

    def start(self) -> None:
        """The serving revision is tagged as the main one (first use), traffic pinned."""
        self.platform.adopt_main()

    def wait_serving(self, group: Group, replicas: int) -> None:
        """At once: a revision serves once the platform reports it ready."""

    def drain(self) -> None:
        """At once: Cloud Run serves the split it reports (read back from
        ``traffic_statuses``)."""

    @property
    def url(self) -> str:
        if self._url is None:
            self._url = str(self.platform.api.get_service().uri)
        return self._url

    def weights(self) -> Weights:
        """The split Cloud Run serves now (``traffic_statuses``)."""
        return self._weights(Traffic.served(self.platform.api.get_service()))

    def _weights(self, traffic: Traffic) -> Weights:
        config = self.platform.config
        canary = traffic.tags.get(config.canary_tag)
        canary_percent = traffic.percents.get(canary, 0) if canary else 0
        stable = [r for r in traffic.serving() if r != canary]
        main = traffic.tags.get(config.stable_tag)
        if main is not None and main not in stable and main != canary:
            stable.insert(0, main)
        return Weights(
            stable=sum(traffic.percents.get(r, 0) for r in stable),
            canary=canary_percent,
            stable_members=tuple(stable),
            canary_members=(canary,) if canary else (),
        )

    def set_weights(self, *, stable: int, canary: int) -> Weights:
        """Main revision ``stable`` %, canary revision ``canary`` %; read back."""
        check_weights(stable, canary)
        config = self.platform.config

        def edit(traffic: Traffic, service: run_v2.Service) -> None:
            main = traffic.tags.get(config.stable_tag)
            revision = traffic.tags.get(config.canary_tag)
            if main is None:
                raise RouterError(
                    f"{self.platform.name} has no main revision (tag '{config.stable_tag}') "
                    f"to send {stable}% to; the canary stage tags it when it deploys"
                )
            if revision is None and canary > 0:
                raise RouterError(
                    f"{self.platform.name} has no canary revision (tag '{config.canary_tag}') "
                    f"to send {canary}% to: deploy the canary first"
                )
            traffic.percents = {main: stable}
            if revision is not None and canary > 0:
                traffic.percents[revision] = canary

        self.platform.update(f"splitting traffic stable {stable}% / canary {canary}%", edit)
        return self._read_back(stable, canary)

    def _read_back(self, stable: int, canary: int) -> Weights:
        service = self.platform.api.get_service()
        weights = self._weights(Traffic.served(service))
        if (weights.stable, weights.canary) != (stable, canary):
            served = "; ".join(
                f"{t.revision or 'LATEST'} {t.percent}% tag {t.tag or '-'}"
                for t in service.traffic_statuses
            )
            raise RouterError(
                f"{self.describe} serves {weights}, not stable {stable}% / canary {canary}% "
                f"as written (traffic_statuses: {served}; service condition: "
                f"{service.terminal_condition.message or service.terminal_condition.state})"
            )
        return weights

    def set_members(self, **change: Unpack[MemberChange]) -> Weights:
        """The main revision is ``stable[0]``, the canary revision ``canary[0]`` (none:
        the canary tag is removed); the split is kept unless ``split`` is given."""
        stable, canary, split = change["stable"], change["canary"], change.get("split")
        if len(stable) != 1 or len(canary) > 1:
            raise RouterError(
                f"a Cloud Run split has one main revision and at most one canary revision, "
                f"got stable {list(stable)} and canary {list(canary)}"
            )
        config = self.platform.config
        current = self.weights()
        stable_percent, canary_percent = split or (current.stable, current.canary)
        if not canary:
            stable_percent, canary_percent = 100, 0
        check_weights(stable_percent, canary_percent)

        def edit(traffic: Traffic, service: run_v2.Service) -> None:
            traffic.tags[config.stable_tag] = stable[0]
            if canary:
                traffic.tags[config.canary_tag] = canary[0]
            else:
                traffic.tags.pop(config.canary_tag, None)
            traffic.percents = {stable[0]: stable_percent}
            if canary and canary_percent:
                traffic.percents[canary[0]] = canary_percent

        self.platform.update("setting the main and canary revisions", edit)
        return self._read_back(stable_percent, canary_percent)
