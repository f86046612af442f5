"""Test configuration for pytest-release's own suite."""

pytest_plugins = ["pytester"]
