"""The reference service of pytest-release: a small shop with fault knobs."""

__version__ = "1.0.0"
