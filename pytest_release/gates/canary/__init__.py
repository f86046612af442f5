"""The ``canary`` gate: the rollout step of a stage as test items.

:mod:`.plugin` (hooks), :mod:`.config` (the gate's table and its effective settings),
:mod:`.items` (one item per step, running :class:`pytest_release.canary.controller.Controller`),
:mod:`.finish` (end of the stage: final rollback and notification), :mod:`.kubernetes`
(the Kubernetes platform's ledger backend and its API server at the end of a stage).
The engine itself (platforms, routers, sampler, judge) is :mod:`pytest_release.canary`,
which does not import pytest.
"""
