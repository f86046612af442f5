"""The records of a release: what a stage run is and how it ended (:mod:`.stage_run`),
the ledger of stage runs per release behind a store (:mod:`.ledger`), a rollout stage's
lease (:mod:`.lease`) and the recent releases it lists (:mod:`.recent_releases`)."""
