"""The fault catalogue of issue 16: one module per theme, one test per case."""
