"""``python -m pytest_release argo-status``: what Argo Rollouts did with a Rollout (read
back from its status and the TraefikService it manages), printed, and with ``--stage``
recorded in that stage's latest ledger entry for the release (``details.controller``):
rollback stays the controller's, the ledger says what it did."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from pytest_release.config.command_line import command_parser
from pytest_release.errors import LedgerError, PlatformError, ReleaseConfigError


def parser() -> argparse.ArgumentParser:
    p = command_parser(
        "python -m pytest_release argo-status",
        "Read what Argo Rollouts did with a Rollout; optionally record it.",
    )
    p.add_argument("--namespace", required=True, help="namespace of the Rollout")
    p.add_argument("--rollout", required=True, help="name of the Rollout")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, in-cluster)")
    p.add_argument("--context", help="kubeconfig context")
    p.add_argument("--stage", help="record it in this stage's latest ledger entry")
    p.add_argument("--release-id", help="the release of that entry (with --stage)")
    p.add_argument("--ledger", help="the ledger file (default: the configuration's)")
    return p


def main(argv: Sequence[str], rootdir: Path | None = None) -> int:
    from pytest_release.canary.platforms.argo_rollouts.observe import RolloutObserver
    from pytest_release.canary.platforms.kubernetes.client import KubeApi
    from pytest_release.canary.platforms.kubernetes.config import ClusterAccess
    from pytest_release.controllers.analysis_server import open_ledger

    args = parser().parse_args(argv)
    root = rootdir or Path.cwd()
    if args.stage and not args.release_id:
        print("argo-status: --stage needs --release-id (the release it ran for)", file=sys.stderr)
        return 2
    try:
        api = KubeApi(ClusterAccess(kubeconfig=args.kubeconfig, context=args.context), root)
        try:
            seen = RolloutObserver(api, args.namespace, args.rollout).observe()
        finally:
            api.close()
        print(seen.describe())
        if args.stage:
            ledger = open_ledger(args.release_config, args.ledger, root)
            entry = ledger.latest(args.release_id, args.stage)
            if entry is None:
                print(
                    f"argo-status: the ledger has no run of stage {args.stage!r} for release "
                    f"{args.release_id!r} to record it in",
                    file=sys.stderr,
                )
                return 2
            record = seen.to_record()
            ledger.update(replace(entry, details={**entry.details, "controller": record}))
            print(f"recorded in {ledger.location}: {json.dumps(record, sort_keys=True)}")
    except (PlatformError, LedgerError, ReleaseConfigError, OSError) as exc:
        print(f"pytest_release argo-status: {exc}", file=sys.stderr)
        return 2
    return 0
