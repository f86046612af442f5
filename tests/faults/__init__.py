"""The fault catalogue of issue 16: one module per theme, one test per case, each failing
on the code before its fix.

* ``test_verdicts.py`` - interrupts, partial runs and report paths give a true outcome
  (cases 1, 2, 4); ``test_rollback_failed.py`` - a failed rollback is recorded (case 3);
* ``test_secrets.py`` - secrets never reach the terminal, JUnit, GitHub or the ledger
  (cases 5 and 6);
* ``test_bad_input.py``, ``test_bad_files.py`` - bad configuration and files are clear
  errors, never an INTERNALERROR (cases 7, 8, 10);
* ``test_junit.py`` - JUnit and the terminal summary tell the truth (case 9).
"""
