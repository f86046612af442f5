"""The fault catalogue of issue 16: one module per theme, one test per case, each failing
on the code before its fix.

* ``test_secrets.py`` - secrets never reach the terminal, JUnit, GitHub or the ledger
  (cases 5 and 6);
* ``test_junit.py`` - JUnit and the terminal summary tell the truth (case 9).
"""
