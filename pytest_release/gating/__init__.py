"""Gates inside a session: which test joins which gate and the items gate kinds generate
(:mod:`.collect`, :mod:`.gate_node`), a failed gate closing its dependents
(:mod:`.closing`), xdist handing out a gate's items only once it is released
(:mod:`.xdist_scheduler`), and coverage thresholds of any gate (:mod:`.coverage`)."""
