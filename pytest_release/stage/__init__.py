"""The stage session: the plugin object registered only with ``--stage``
(:mod:`.session`), its settings resolved once (:mod:`.resolve`), what it checks before it
starts (:mod:`.checks`) and writes at its end (:mod:`.report`, :mod:`.verdict`), test
reports made ready where they are made (:mod:`.report_prep`), the pytest modes that run
no test (:mod:`.invocation`), partial runs (:mod:`.narrowing`) and the run directory
shared with xdist workers (:mod:`.run_dir`)."""
