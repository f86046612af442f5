"""Where versions run: one folder per platform, each with ``config.py`` (its ``platform``
table), ``platform.py`` (the :class:`~pytest_release.canary.platform.Platform`),
``rollout.py`` (a :class:`~pytest_release.canary.rollout.Rollout` over it and its routers,
built by ``build_rollout(settings, rootdir)``) and ``entry.py`` (what it registers).

Adding a platform is one module plus an entry point of ``pytest_release.platforms``
(:mod:`pytest_release.canary.registry`); this package lists none.
"""
