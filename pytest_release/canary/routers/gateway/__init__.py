"""Gateway API ``HTTPRoute`` backend weights as the traffic router (Kubernetes)."""
