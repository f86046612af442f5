"""Read a Postman collection (v2.0/v2.1) into the requests newman will execute.

Done at collection time on every process, without running newman: the item set must be
known (and identical) everywhere before any request is sent.  Requests are listed in
newman's execution order (depth first), so a request's index here is the
``cursor.position`` newman reports for it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_release.errors import GateSetupError

SUPPORTED_SCHEMAS = ("v2.0.0", "v2.1.0")
_ITEM_ARRAY = re.compile(r'"item"\s*:\s*\[')


class CollectionError(GateSetupError):
    """The collection (or a file it needs) cannot be used; ``line`` is 1-based if known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True)
class RequestSpec:
    """One request of a collection, at ``position`` in newman's execution order."""

    position: int
    folders: tuple[str, ...]
    name: str
    method: str
    line: int | None

    @property
    def path(self) -> str:
        """``orders/admin/create order``: folders and request name."""
        return "/".join((*self.folders, self.name))


@dataclass(frozen=True)
class Collection:
    path: Path
    name: str
    requests: tuple[RequestSpec, ...]
    # The collection's own variables (``"variable"``), name and value.
    variables: tuple[tuple[str, str], ...] = ()


def _read(path: Path, what: str) -> str:
    """The text of ``path``, ``what`` naming it in the error when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CollectionError(f"{what} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CollectionError(f"{what} cannot be read: {exc}") from None


def _json(text: str, what: str, advice: str = "") -> object:
    """``text`` parsed, ``what`` naming the file and ``advice`` ending the message when it
    is no JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CollectionError(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}{advice}",
            line=exc.lineno,
        ) from None


def load_collection(path: Path, label: str | None = None) -> Collection:
    """Parse ``path``; raises :class:`CollectionError` with a message naming the problem
    (and the file as ``label``, e.g. its repo-relative path)."""
    shown = label or str(path)
    what = f"collection file {shown}"
    text = _read(path, what)
    data = _json(
        text, what, "; fix the file or export the collection again from Postman (Collection v2.1)"
    )
    if not isinstance(data, dict):
        raise CollectionError(
            f"collection file {shown} holds a JSON {type(data).__name__}, not a Postman "
            "collection object; export it from Postman as Collection v2.1",
            line=1,
        )
    info = data.get("info")
    if not isinstance(info, dict) or not isinstance(data.get("item"), list):
        hint = " (this looks like a v1 collection)" if "requests" in data else ""
        raise CollectionError(
            f"collection file {shown} is not a Postman collection v2.1: it needs an 'info' "
            f"object and an 'item' array{hint}; export it from Postman as Collection v2.1",
            line=1,
        )
    schema = str(info.get("schema", ""))
    if schema and not any(version in schema for version in SUPPORTED_SCHEMAS):
        raise CollectionError(
            f"collection file {shown} uses schema {schema!r}; supported: Postman collection "
            f"{', '.join(SUPPORTED_SCHEMAS)}; export it from Postman as Collection v2.1",
            line=_line_of(text, text.find(schema)),
        )
    locator = _Locator(text)
    requests = tuple(_requests(data["item"], (), locator, shown))
    return Collection(
        path=path,
        name=str(info.get("name") or path.stem),
        requests=requests,
        variables=tuple(_variables(data.get("variable"))),
    )


def _variables(entries: object) -> Iterator[tuple[str, str]]:
    """``(key, value)`` of a Postman variable list (values as newman prints them)."""
    if not isinstance(entries, list):
        return
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("key"), str):
            value = entry.get("value")
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                yield entry["key"], str(value)


def _requests(
    items: list[Any], folders: tuple[str, ...], locator: _Locator, shown: str
) -> Iterator[RequestSpec]:
    for index, entry in enumerate(items):
        where = "/".join(folders) or "the top level"
        if not isinstance(entry, dict):
            raise CollectionError(
                f"collection file {shown}: entry {index} in {where} is a JSON "
                f"{type(entry).__name__}, expected an item or folder object"
            )
        name = entry.get("name")
        name = str(name) if name not in (None, "") else f"request {index + 1}"
        line = locator.find(name)
        children = entry.get("item")
        if children is not None:
            if not isinstance(children, list):
                raise CollectionError(
                    f"collection file {shown}: folder {name!r} in {where} has an 'item' that "
                    "is not an array",
                    line=line,
                )
            yield from _requests(children, (*folders, name), locator, shown)
            continue
        request = entry.get("request")
        method = "GET"
        if isinstance(request, dict) and isinstance(request.get("method"), str):
            method = request["method"].upper()
        yield RequestSpec(
            position=locator.next_position(),
            folders=folders,
            name=name,
            method=method,
            line=line,
        )


class _Locator:
    """Finds the line of each item's ``"name"`` in the file text, best effort.

    Items are visited in document order, so each search starts where the previous
    match ended; a name not found from there is searched from the first item array.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        first = _ITEM_ARRAY.search(text)
        self.start = first.end() if first else 0
        self.cursor = self.start
        self.positions = 0

    def next_position(self) -> int:
        position = self.positions
        self.positions += 1
        return position

    def find(self, name: str) -> int | None:
        pattern = re.compile(r'"name"\s*:\s*' + re.escape(json.dumps(name)))
        match = pattern.search(self.text, self.cursor) or pattern.search(self.text, self.start)
        if match is None:
            return None
        self.cursor = match.end()
        return _line_of(self.text, match.start())


def _line_of(text: str, offset: int) -> int | None:
    return text.count("\n", 0, offset) + 1 if offset >= 0 else None


def count_iteration_data(path: Path, label: str | None = None) -> int:
    """How many iterations newman runs for an iteration data file (JSON array or CSV)."""
    shown = label or str(path)
    what = f"iteration data file {shown}"
    text = _read(path, what)
    if path.suffix.lower() == ".csv":
        # newman counts every record after the header, blank lines included.
        rows = list(csv.reader(io.StringIO(text, newline="")))
        if len(rows) < 2:
            raise CollectionError(
                f"iteration data file {shown} has no data rows: newman needs a header row "
                "and one row per iteration",
                line=1,
            )
        return len(rows) - 1
    data = _json(text, what, " (use a JSON array of objects, or a .csv file)")
    if not isinstance(data, list) or not data or not all(isinstance(r, dict) for r in data):
        raise CollectionError(
            f"iteration data file {shown} must hold a non-empty JSON array of objects, one "
            f'per iteration, e.g. [{{"sku": "a"}}, {{"sku": "b"}}]',
            line=1,
        )
    return len(data)


def read_json_file(path: Path, what: str, label: str | None = None) -> None:
    """Check that an environment or globals file exists and is a JSON object."""
    file = f"{what} file {label or path}"
    if not isinstance(_json(_read(path, file), file), dict):
        raise CollectionError(f"{file} must hold a JSON object (a Postman {what} export)", line=1)


def secret_values(
    path: Path, is_secret: Callable[[str], bool] = lambda name: False
) -> list[tuple[str, str]]:
    """``(name, value)`` of the variables marked ``"type": "secret"`` in a Postman
    environment or globals file, and of those whose name ``is_secret`` (none when the
    file cannot be read: the gate reports that itself)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return []
    entries = data.get("values") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return []
    marked = {
        entry.get("key")
        for entry in entries
        if isinstance(entry, dict) and entry.get("type") == "secret"
    }
    return [(key, value) for key, value in _variables(entries) if key in marked or is_secret(key)]
