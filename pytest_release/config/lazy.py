"""Values built on first read: a table a process may never need costs nothing until
it is read (an xdist worker gets the controller's validated tables pickled, and only
the ones its gates read are unpickled, importing their models then)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from pytest_release.errors import ReleaseConfigError

T = TypeVar("T")


class Lazy(Generic[T]):
    """One value: given (``Lazy.ready``) or built by ``load`` on the first ``get``."""

    def __init__(self, load: Callable[[], T]) -> None:
        self._load: Callable[[], T] | None = load
        self._value: T | None = None

    @classmethod
    def ready(cls, value: T) -> Lazy[T]:
        lazy = cls(lambda: value)
        lazy._value, lazy._load = value, None
        return lazy

    def get(self) -> T:
        if self._load is not None:
            self._value, self._load = self._load(), None
        return self._value  # type: ignore[return-value]  # set by load (T may be None)


class PickledTables(Mapping[str, T]):
    """Tables by name, sent pickled (validated models of another process, the xdist
    controller) and unpickled when first read.  ``names`` are every name the
    configuration has (messages list them); a name whose table was not sent (a gate
    the stage does not run) is a clear error, never a silent default."""

    def __init__(self, what: str, names: tuple[str, ...], pickled: Mapping[str, bytes]) -> None:
        self._what = what
        self._names = names
        self._pickled = dict(pickled)
        self._tables: dict[str, T] = {}

    def __getitem__(self, name: str) -> T:
        if name not in self._tables:
            if name not in self._pickled:
                if name in self._names:
                    raise ReleaseConfigError(
                        f"{self._what}.{name} is not part of this stage, so the xdist "
                        "controller did not send its settings to the workers; read it on "
                        "the controller (or without -n)"
                    )
                raise KeyError(name)
            import pickle  # only a worker given pickled tables needs it

            self._tables[name] = pickle.loads(self._pickled[name])  # our own controller pickled it
        return self._tables[name]

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)
