"""How pytest was invoked: the modes in which it runs no test."""

from __future__ import annotations

import pytest

# pytest's options with which it runs no test (it only shows, collects or sets up): a stage
# run with one of them writes no ledger entry and no report, and takes no lock. The first
# that applies names the mode (--setup-plan implies --setup-only).
NO_TEST_OPTIONS: tuple[tuple[str, str], ...] = (
    ("version", "--version"),
    ("help", "--help"),
    ("markers", "--markers"),
    ("showfixtures", "--fixtures"),
    ("show_fixtures_per_test", "--fixtures-per-test"),
    ("collectonly", "--collect-only"),
    ("setupplan", "--setup-plan"),
    ("setuponly", "--setup-only"),
)
# Of those, the ones that only print pytest's own information, no session: a stage's
# requirements are not checked either.
INFORMATION_OPTIONS = frozenset({"--version", "--help", "--markers"})


def no_test_option(config: pytest.Config) -> str | None:
    """The option with which this pytest run runs no test, or None."""
    for dest, option in NO_TEST_OPTIONS:
        if getattr(config.option, dest, False):
            return option
    return None
