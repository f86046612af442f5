"""Who gets which share of the traffic: one folder per router implementing
:class:`pytest_release.canary.router.TrafficRouter`."""
