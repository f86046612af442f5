"""The Kubernetes platform of the canary engine: Deployments and Services
(:mod:`.platform`), Traefik ``TraefikService`` and Gateway API ``HTTPRoute`` weights
(:mod:`.traefik`, :mod:`.gateway`), the rollout steps over them (:mod:`.rollout`) and the
ledger in a ConfigMap with a Lease as the rollout lock (:mod:`.ledger_store`).

Importing this package is cheap: the ``kubernetes`` client is imported only when a
cluster is contacted (:mod:`.client`).
"""
