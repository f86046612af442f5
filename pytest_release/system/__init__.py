"""What the operating system gives every layer: files replaced atomically, processes
(identity, groups, tools run with a deadline) and the stage's signals.  Imports nothing
else of the package, and no pytest."""
