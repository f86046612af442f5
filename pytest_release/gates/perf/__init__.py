"""The ``perf`` gate: a Locust load test run headless once per session, one item per
endpoint (Locust's request type and name) judged against latency and error limits.

:mod:`.plugin` (hooks), :mod:`.config` (the gate's table), :mod:`.locustfile` (endpoints
read from the locustfile at collection time), :mod:`.runner` (running Locust once and
reading its CSV statistics), :mod:`.verdicts` (limits applied), :mod:`.items`.
"""
