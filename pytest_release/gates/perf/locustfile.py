"""The endpoints a locustfile requests, read from its source at collection time.

Locust names a request by its ``name=`` argument, else by the path (and query) of the
URL.  Every ``<something>.client.<method>("<literal>", ...)`` and
``<something>.client.request("<METHOD>", "<literal>", ...)`` call with a literal URL or
``name=`` gives an endpoint ``"<METHOD> <name>"`` and so an item, known before Locust
runs.  Requests whose name is only known at run time (an f-string URL without
``name=``) are judged together by the gate's ``(other endpoints)`` item.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

HTTP_METHODS = ("get", "post", "put", "patch", "delete", "head", "options")


@dataclass(frozen=True)
class Endpoint:
    method: str
    name: str
    line: int | None = None  # 1-based, in the locustfile

    @property
    def key(self) -> str:
        return f"{self.method} {self.name}"


class LocustfileError(Exception):
    """The locustfile cannot be read or parsed."""


def endpoints_in(path: Path) -> list[Endpoint]:
    """The endpoints requested with a literal name in ``path``, in source order, once each."""
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LocustfileError(f"cannot read locustfile {path}: {exc}") from exc
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise LocustfileError(
            f"locustfile {path} is not valid Python: {exc.msg} (line {exc.lineno})"
        ) from exc
    found: dict[str, Endpoint] = {}
    calls = sorted(
        (node for node in ast.walk(tree) if isinstance(node, ast.Call)),
        key=lambda node: (node.lineno, node.col_offset),
    )
    for call in calls:
        endpoint = _endpoint(call)
        if endpoint is not None and endpoint.key not in found:
            found[endpoint.key] = endpoint
    return list(found.values())


def _endpoint(call: ast.Call) -> Endpoint | None:
    func = call.func
    if not isinstance(func, ast.Attribute) or not _is_client(func.value):
        return None
    args = list(call.args)
    if func.attr in HTTP_METHODS:
        method = func.attr.upper()
    elif func.attr == "request" and args and _literal(args[0]) is not None:
        method = str(_literal(args[0])).upper()
        args = args[1:]
    else:
        return None
    keywords = {kw.arg: kw.value for kw in call.keywords if kw.arg is not None}
    name = _literal(keywords["name"]) if "name" in keywords else None
    if name is None:
        url_node = args[0] if args else keywords.get("url")
        url = None if url_node is None else _literal(url_node)
        if url is None:
            return None
        name = _path_url(url)
    return Endpoint(method=method, name=name, line=call.lineno)


def _is_client(node: ast.expr) -> bool:
    """``self.client``, ``user.client`` or a bare ``client``."""
    if isinstance(node, ast.Attribute):
        return node.attr == "client"
    return isinstance(node, ast.Name) and node.id == "client"


def _literal(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _path_url(url: str) -> str:
    """What ``requests`` calls ``path_url``: the path and query of the URL."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        path = parts.path or "/"
        return f"{path}?{parts.query}" if parts.query else path
    return url
