"""Values built on first read: a table a process may never need costs nothing until
it is read (an xdist worker gets the controller's validated tables pickled, and only
the ones its gates read are unpickled, importing their models then)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any, Generic, TypeVar

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

    @property
    def built(self) -> bool:
        """Whether the value is there (given, or loaded by a ``get``)."""
        return self._load is None

    def get(self) -> T:
        if self._load is not None:
            self._value, self._load = self._load(), None
        return self._value  # type: ignore[return-value]  # set by load (T may be None)


def lazy_attributes(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """The ``__getattr__`` of ``package`` (a package being imported): each name of
    ``where`` imported from its module (relative to ``package``) on first use, then kept
    in the package's namespace."""
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    return __getattr__


class BuiltOnRead(Mapping[str, T]):
    """Values by name, each built by :meth:`_build` when first read and kept; the names
    (:meth:`_keys`: iteration, ``in``, ``len``) are known without building anything."""

    def __init__(self) -> None:
        self._built: dict[str, T] = {}

    def _keys(self) -> Collection[str]:
        raise NotImplementedError

    def _build(self, name: str) -> T:
        """The value of ``name``; a KeyError when there is no such name."""
        raise NotImplementedError

    def __getitem__(self, name: str) -> T:
        if name not in self._built:
            self._built[name] = self._build(name)
        return self._built[name]

    def __contains__(self, name: object) -> bool:
        return name in self._keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def built(self) -> list[str]:
        """The names whose values have been built (or given) so far."""
        return list(self._built)


class BuiltByName(BuiltOnRead[T]):
    """Values of ``names``, each ``build(name)`` when first read, or given (``known``)."""

    def __init__(
        self,
        names: Collection[str],
        build: Callable[[str], T],
        known: Mapping[str, T] | None = None,
    ) -> None:
        super().__init__()
        self._names = names
        self._build_one = build
        self._built.update(known or {})

    def _keys(self) -> Collection[str]:
        return self._names

    def _build(self, name: str) -> T:
        if name not in self._names:
            raise KeyError(name)
        return self._build_one(name)


class PickledTables(BuiltOnRead[T]):
    """Tables by name, sent pickled (validated models of another process, the xdist
    controller) and unpickled when first read.  ``names`` are every name the
    configuration has (messages list them); a name whose table was not sent (a gate
    the stage does not run) is a clear error, never a silent default."""

    def __init__(
        self,
        what: str,
        names: tuple[str, ...],
        pickled: Mapping[str, bytes],
        unsent: Callable[[str], T | None] | None = None,
    ) -> None:
        super().__init__()
        self._what = what
        self._names = names
        self._pickled = dict(pickled)
        # The table of a name the controller did not send on purpose, or None.
        self._unsent = unsent

    def _keys(self) -> tuple[str, ...]:
        return self._names

    def _build(self, name: str) -> T:
        if name not in self._pickled:
            unsent = self._unsent(name) if self._unsent is not None else None
            if unsent is not None:
                return unsent
            if name in self._names:
                raise ReleaseConfigError(
                    f"{self._what}.{name} is not part of this stage, so the xdist "
                    "controller did not send its settings to the workers; read it on "
                    "the controller (or without -n)"
                )
            raise KeyError(name)
        import pickle  # only a worker given pickled tables needs it

        table: T = pickle.loads(self._pickled[name])  # our own controller pickled it
        return table
