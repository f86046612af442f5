"""The ``e2e`` gate: pytest-playwright wiring (browser, base URL, artifacts).

:mod:`.plugin` (hooks and fixtures), :mod:`.config` (the gate's table).
"""
