"""Where versions run: one folder per platform, each with ``config.py`` (its ``platform``
table), ``platform.py`` (the :class:`~pytest_release.canary.platform.Platform`) and
``entry.py`` (what it registers, and ``build_rollout(settings, rootdir)``: its platform and
router handed to the one :class:`~pytest_release.canary.rollout.Rollout`).

Adding a platform is one module plus an entry point of ``pytest_release.platforms``
(:mod:`pytest_release.canary.registry`); this package lists none.
"""
