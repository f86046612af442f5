"""Built-in gates.  Every module here is registered as a pytest plugin when a stage
runs (see :func:`pytest_release.plugin._register_builtin_gates`) and implements the
hooks of :mod:`pytest_release.hookspecs` for its gate kind."""
