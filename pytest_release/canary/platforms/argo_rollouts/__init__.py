"""The observing platform of a rollout Argo Rollouts drives: pytest-release reads which
version is canary and stable and their weights (the ``Rollout``'s status and the
``TraefikService`` the controller manages) instead of writing them, and records what the
controller did. Not yet in the platform table (``canary/platforms/__init__.py``): it joins
through the platform registry once that exists (docs/argo-rollouts.md)."""
