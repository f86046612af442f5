"""Test support shared by the test folders."""
