"""What a stage writes for people and CI systems: JUnit (:mod:`.junit`), GitHub
annotations, step summary and outputs (:mod:`.github`), the gate marks a test report
carries (:mod:`.gate_properties`), and the redaction of secrets everything written
passes through (:mod:`.redact`, :mod:`.secret_forms`)."""
