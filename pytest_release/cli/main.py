"""``python -m pytest_release COMMAND``: helpers around the pytest plugin.

* ``workflow``: write the GitHub Actions workflow of the configured stages;
* ``merge-ledgers``: unite the ledgers of CI jobs (the stage action runs it);
* ``merge-shards``: record a stage whose gates ran in separate jobs as one run;
* ``argo-rollouts``, ``analysis-server``, ``argo-status``: pytest-release as the
  analysis of Argo Rollouts (:mod:`pytest_release.controllers`);
* ``flagger``, ``webhook``: the Flagger Canary and its webhooks;
* ``k8s-watchdog``: the Kubernetes dead man's switch (``run``) and its manifest
  (``manifest``), :mod:`pytest_release.canary.platforms.kubernetes.watchdog`.

Each command's module is imported only when it runs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

COMMANDS = {
    "workflow": "write the GitHub Actions workflow of the configured stages",
    "merge-ledgers": "unite ledger files of CI jobs into one",
    "merge-shards": "record a stage whose gates ran in separate jobs as one run",
    "k8s-watchdog": "Kubernetes dead man's switch: run it, or print its manifest",
    "argo-rollouts": "write the Argo Rollouts AnalysisTemplates and Rollout of the stages",
    "analysis-server": "serve the stages' verdicts as JSON (Argo Rollouts web provider)",
    "argo-status": "what Argo Rollouts did with a Rollout; record it in the ledger",
    "flagger": "write the Flagger Canary of the stages (webhooks: `webhook`)",
    "webhook": "answer Flagger's webhooks with the stages' verdicts",
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        usage = "\n".join(f"  {name:<14} {text}" for name, text in COMMANDS.items())
        stream = sys.stdout if args and args[0] in ("-h", "--help") else sys.stderr
        unknown = (
            f"unknown command {args[0]!r}\n" if args and args[0] not in ("-h", "--help") else ""
        )
        print(f"{unknown}usage: python -m pytest_release COMMAND [ARGS]\n{usage}", file=stream)
        return 0 if stream is sys.stdout else 2
    if args[0] == "k8s-watchdog":
        from pytest_release.canary.platforms.kubernetes import watchdog

        return watchdog.main(args[1:])
    if args[0] in ("argo-rollouts", "analysis-server", "argo-status", "flagger", "webhook"):
        from pytest_release.controllers import cli

        return cli.main(args[0], args[1:])
    if args[0] == "workflow":
        from pytest_release.workflow import file as workflow_file

        return workflow_file.main(args[1:])
    from pytest_release.workflow import shards

    if args[0] == "merge-shards":
        return shards.merge_main(args[1:])
    return shards.merge_ledgers_main(args[1:])


if __name__ == "__main__":
    sys.exit(main())
