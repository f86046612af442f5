"""The ``newman`` gate: Postman collections run by newman, one test item per request.

:mod:`.plugin` (hooks), :mod:`.config` (the gate's table), :mod:`.items` (request items
and their failures), :mod:`.collection` (collection parsing at collection time),
:mod:`.runner` (running newman once per collection and reading its JSON report).
"""
