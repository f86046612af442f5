"""Helpers of the ``docker`` gate: configuration, Docker operations, image checks and the
testcontainers helper for dependency containers.

Only :mod:`pytest_release.docker_gate.config` and :mod:`pytest_release.docker_gate.secrets`
are safe to import without the ``docker`` package; the others import it lazily.
"""
