"""The ``lint`` gate: every configured linter and type checker runs once per session and
each finding becomes a test item (the pytest-mypy pattern), plus one status item per tool
so a tool that did not run cannot look green.

:mod:`.plugin` (hooks and items), :mod:`.config` (the gate's table), :mod:`.tools` (one
adapter per tool: command line and output parser), :mod:`.runner` (runs the tools once
per session with a result cache), :mod:`.model` (findings and tool results).
"""
