"""Postman collections run by newman: collection parsing (collection time) and running
newman plus reading its JSON report (run time).  Used by :mod:`pytest_release.gates.newman`."""
