"""Traefik ``TraefikService`` weighted services as the traffic router (Kubernetes)."""
