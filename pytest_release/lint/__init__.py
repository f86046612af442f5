"""Support for the ``lint`` gate (:mod:`pytest_release.gates.lint`): tool adapters that
build each tool's command line and parse its machine-readable output, and the runner
that executes the tools once per session with a result cache."""
