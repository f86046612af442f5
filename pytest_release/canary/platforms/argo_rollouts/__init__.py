"""The observing platform of a rollout Argo Rollouts drives (``platform.type =
"argo-rollouts"``): pytest-release reads which version is canary and stable and their
weights (the ``Rollout``'s status and the ``TraefikService`` the controller manages)
instead of writing them, judges, and records what the controller did
(docs/argo-rollouts.md)."""
