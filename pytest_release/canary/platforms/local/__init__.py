"""The local platform: stable and canary replicas as processes or Docker containers on
127.0.0.1, kept by a supervisor, routed by HAProxy."""
