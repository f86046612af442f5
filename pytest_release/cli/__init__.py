"""``python -m pytest_release COMMAND``: the sub-commands around the pytest plugin
(:mod:`.main`); each command's module is imported only when it runs."""
