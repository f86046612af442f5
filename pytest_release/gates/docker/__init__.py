"""The ``docker`` gate: build the image, run it, check health and the image itself, push.

:mod:`.plugin` (hooks), :mod:`.config` (the gate's table), :mod:`.items` (the checks),
:mod:`.state` (per-process image and container state), :mod:`.fixtures` (fixtures for the
gate's tests), :mod:`.engine` (Docker operations), :mod:`.dependencies` (testcontainers
dependency containers), :mod:`.secrets` (secret scan of the image).

Only :mod:`.config` and :mod:`.secrets` are safe to import without the ``docker``
package; the others import it lazily.
"""
