"""What the operating system gives every layer: files replaced atomically, processes
(identity, groups, tools run with a deadline) and the stage's signals; and the records
that travel between processes as JSON.  Imports nothing else of the package, and no
pytest."""
