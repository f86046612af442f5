"""The Kubernetes platform: Deployments and Services (:mod:`.platform`), the rollout steps
over them and a Traefik or Gateway API router (:mod:`.rollout`), the ledger in a
ConfigMap with a Lease as the rollout lock (:mod:`.ledger_store`) and the plugin that
offers that store and checks the API server at the end of a stage (:mod:`.plugin`).

Importing this package is cheap: the ``kubernetes`` client is imported only when a
cluster is contacted (:mod:`.client`).
"""
