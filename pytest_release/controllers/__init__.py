"""pytest-release as the analysis of a progressive-delivery controller (Argo Rollouts): the
controller's resources generated from the stage configuration (:mod:`.argo_resources`,
``python -m pytest_release argo-rollouts``) and the judge's verdict served to its ``web``
metric provider (:mod:`.analysis_server`, ``python -m pytest_release analysis-server``);
likewise Flagger: its ``Canary`` (:mod:`.flagger_canary`, ``python -m pytest_release
flagger``) and the answers to its webhooks (:mod:`.webhook`, ``python -m pytest_release
webhook``)."""
