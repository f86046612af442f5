"""Keep secrets out of every report: JUnit, annotations, step summary, ledger, Slack.

A :class:`Redactor` masks the configured secret values in every form a test prints them
(:mod:`.secret_forms`: escaped, URL-encoded, JSON, base64, line by line, fragments) and
anything shaped like a token or webhook URL (docs/secrets.md).  It compiles one pattern
when it is made, so a call costs one regex pass, and none for text that holds no form of
a configured value and no anchor of a credential shape (``ghp_``, ``xox``, ``bearer ``,
...); base64 words, fragments and cut pieces are searched only when a pre-test finds a
base64 core, a 6-character piece of a secret, or a ``...``.

Fragments: a run of text whose every 6-character window is a piece of a secret is
masked when it looks random (:func:`.secret_forms.looks_random`): near-equal assertions,
diffs and ``pprint``'s wraps show a secret in pieces.

Truncated secrets: pytest cuts long reprs in the middle (``'Authorizatio...r abc.def.ghi'``)
or at the end (``'ghp_01234567...'``).  A piece of a known secret of at least
:data:`MIN_PIECE` characters is masked when it ends right before a ``...`` (a prefix of
the secret) or starts right after one (a suffix).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from pytest_release.report.secret_forms import (
    FRAGMENT,
    base64_cores,
    fragment_sources,
    grams,
    literal_forms,
    looks_random,
)

if TYPE_CHECKING:
    import pytest

MASK = "***"
MIN_PIECE = 6  # a shorter piece of a secret next to "..." is ordinary text
_ELLIPSIS = "..."  # pytest's cut
_ELLIPSIS_CHAR = "\u2026"  # Chai's (newman's assertion messages)

# Shapes of credentials that must never be printed, whether configured or not, each with
# its anchors: strings that every match contains (in lower case, for a text lowered).  A
# text with no anchor and no configured value is returned without a regex pass, which on
# the node ids of a whole suite is most of the cost (the look-behind tries every position).
_SHAPE_TABLE: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        r"https://hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/[^\s\"'<>]+",
        ("hooks.slack",),
    ),
    (r"(?i:(?<=bearer )[A-Za-z0-9\-._~+/]{8,}=*)", ("bearer ",)),
    (r"\bxox[abposr]-[A-Za-z0-9-]{8,}", ("xox",)),
    (r"\bgh[pousr]_[A-Za-z0-9]{20,}", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_")),
    (r"\bgithub_pat_[A-Za-z0-9_]{20,}", ("github_pat_",)),
    # The same token shapes cut short by a truncated repr.
    (
        r"\b(?:gh[pousr]_|github_pat_|xox[abposr]-)[A-Za-z0-9_-]*(?=\.\.\.)",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox"),
    ),
)
_PATTERNS = tuple(pattern for pattern, _ in _SHAPE_TABLE)
# Compiled on the first text that may match (Redactor._pattern): compiling it costs about
# 1 ms (4 M instructions) of a stage's start-up, which a stage whose texts carry no anchor
# does not need.
_SHAPES_PATTERN = "|".join(_PATTERNS)
_ANCHORS = tuple(sorted({anchor for _, anchors in _SHAPE_TABLE for anchor in anchors}))


def _may_have_shape(text: str) -> bool:
    """False only when no credential shape can match ``text`` (no anchor in it)."""
    lowered = text.lower()
    return any(anchor in lowered for anchor in _ANCHORS)


MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words
_BASE64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_")


def _variants(value: str) -> set[str]:
    """``value`` as printed (:func:`.secret_forms.literal_forms`), long enough to mask."""
    return {v for v in literal_forms(value) if len(v) >= MIN_SECRET_LENGTH}


@dataclass(frozen=True)
class Redactor:
    """Masks configured secret values (as printed, encoded, split into lines, cut into
    fragments) and anything shaped like a token or webhook URL."""

    values: tuple[str, ...] = ()
    _alternatives: str = field(init=False, repr=False, compare=False)
    _pieces: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _literals: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _base64: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _grams: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        variants = {v for value in self.values for v in _variants(value)}
        # Longest first, so a secret containing another is masked whole.
        ordered = sorted(variants, key=len, reverse=True)
        alternatives = "|".join([*(re.escape(v) for v in ordered), _SHAPES_PATTERN])
        object.__setattr__(self, "_alternatives", alternatives)
        object.__setattr__(self, "_pieces", tuple(v for v in ordered if len(v) > MIN_PIECE))
        object.__setattr__(self, "_literals", tuple(ordered))
        cores = {core for value in self.values for core in base64_cores(value)}
        object.__setattr__(self, "_base64", tuple(sorted(cores, key=len, reverse=True)))
        sources = {s for value in self.values for s in fragment_sources(value)}
        object.__setattr__(self, "_grams", grams(sources))

    @cached_property
    def _pattern(self) -> re.Pattern[str]:
        """The configured values' forms and the credential shapes, compiled when first
        needed (cached_property writes the instance's __dict__: allowed when frozen)."""
        return re.compile(self._alternatives)

    @classmethod
    def from_env(
        cls,
        names: Iterable[str],
        environ: Mapping[str, str] | None = None,
        extra_values: Iterable[str] = (),
    ) -> Redactor:
        env = os.environ if environ is None else environ
        values = [env[name] for name in names if env.get(name)]
        values.extend(v for v in extra_values if v)
        return cls().with_values(values)

    def with_values(self, values: Iterable[str]) -> Redactor:
        """A redactor that also masks ``values`` (too short ones are ignored)."""
        usable = {*self.values, *(v for v in values if len(v) >= MIN_SECRET_LENGTH)}
        if usable == set(self.values):
            return self
        return Redactor(values=tuple(sorted(usable, key=len, reverse=True)))

    def __call__(self, text: str) -> str:
        if not text:
            return text
        if self._may_match(text):
            text = self._pattern.sub(MASK, text)
        if self._base64 and any(core in text for core in self._base64):
            text = self._mask_base64(text)
        if self._grams and self._has_gram(text):
            text = self._mask_fragments(text)
        if self._pieces and (_ELLIPSIS in text or _ELLIPSIS_CHAR in text):
            text = self._mask_cut_pieces(text)
        return text

    def finds(self, text: str) -> bool:
        """Whether ``text`` holds a secret as a node id can show one (whole, escaped or
        encoded, cut by ``...``, or a credential shape): one cheap search over the ids of
        a whole suite, before masking them one by one.  Fragments are not searched (a
        parameter id shows the value whole; scanning every 6-character window of 2,000
        ids would cost 20 ms): masking a text (``__call__``) masks them."""
        if self._pieces and (_ELLIPSIS in text or _ELLIPSIS_CHAR in text):
            return True
        if self._base64 and any(core in text for core in self._base64):
            return True
        return self._may_match(text) and self._pattern.search(text) is not None

    def _may_match(self, text: str) -> bool:
        """A cheap pre-test of the pattern: False only when it cannot match (no configured
        value and no anchor of a credential shape is in ``text``)."""
        return any(v in text for v in self._literals) or _may_have_shape(text)

    def _has_gram(self, text: str) -> bool:
        """Whether a :data:`~.secret_forms.FRAGMENT`-character window of ``text`` is a
        piece of a secret (stops at the first)."""
        return not self._grams.isdisjoint(
            text[i : i + FRAGMENT] for i in range(len(text) - FRAGMENT + 1)
        )

    def _mask_base64(self, text: str) -> str:
        """Mask the whole base64 word around each core (the edges encode the secret's
        first and last bytes together with its neighbours, e.g. the user of a Basic
        header)."""
        spans = []
        for core in self._base64:
            start = text.find(core)
            while start != -1:
                begin, end = start, start + len(core)
                while begin > 0 and text[begin - 1] in _BASE64_CHARS:
                    begin -= 1
                while end < len(text) and text[end] in _BASE64_CHARS:
                    end += 1
                while end < len(text) and text[end] == "=":
                    end += 1
                spans.append((begin, end))
                start = text.find(core, end)
        return _replace_spans(text, spans)

    def _mask_fragments(self, text: str) -> str:
        """Mask runs of text whose every window is a piece of a secret, when the run
        looks random (:func:`.secret_forms.looks_random`): pytest's diffs, wraps and
        near-equal values show a secret in pieces."""
        spans = []
        run_start = run_end = -1
        for i in range(len(text) - FRAGMENT + 1):
            if text[i : i + FRAGMENT] not in self._grams:
                continue
            if i > run_end:  # apart from the run so far (overlapping windows join it)
                if run_end > run_start >= 0:
                    spans.append((run_start, run_end))
                run_start = i
            run_end = i + FRAGMENT
        if run_end > run_start >= 0:
            spans.append((run_start, run_end))
        return _replace_spans(text, [s for s in spans if looks_random(text[s[0] : s[1]])])

    def _mask_cut_pieces(self, text: str) -> str:
        """Mask a prefix of a secret right before ``...`` (or ``\u2026``) and a suffix
        right after one."""
        spans: list[tuple[int, int]] = []
        for marker in (_ELLIPSIS, _ELLIPSIS_CHAR):
            start = text.find(marker)
            while start != -1:
                end = start + len(marker)
                for secret in self._pieces:
                    length = _longest_prefix_before(text, start, secret)
                    if length:
                        spans.append((start - length, start))
                        break
                for secret in self._pieces:
                    length = _longest_suffix_after(text, end, secret)
                    if length:
                        spans.append((end, end + length))
                        break
                start = text.find(marker, end)
        return _replace_spans(text, spans)


def _replace_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with each span replaced by one mask (overlapping spans merged)."""
    if not spans:
        return text
    pieces = []
    cursor = 0
    for begin, finish in sorted(spans):
        if begin < cursor:  # overlapping spans: extend the mask already written
            cursor = max(cursor, finish)
            continue
        pieces += [text[cursor:begin], MASK]
        cursor = finish
    pieces.append(text[cursor:])
    return "".join(pieces)


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def secret_warnings(names: Iterable[str], environ: Mapping[str, str] | None = None) -> list[str]:
    """What the configured ``secrets`` cannot mask, one line per kind, naming the
    variables (never their values): names that are not environment variable names, that
    are unset or empty, and values shorter than 4 characters (masking those would hide
    ordinary text, so they stay visible)."""
    env = os.environ if environ is None else environ
    names = list(dict.fromkeys(names))
    invalid = [n for n in names if not _ENV_NAME.fullmatch(n)]
    unset = [n for n in names if n not in invalid and not env.get(n)]
    short = [n for n in names if n not in invalid and 0 < len(env.get(n, "")) < MIN_SECRET_LENGTH]
    warnings = []
    if invalid:
        warnings.append(
            f"secrets: {_names(invalid)} not an environment variable name (letters, digits "
            "and _, not starting with a digit), so nothing is masked for it; fix the name in "
            "[tool.pytest-release] secrets"
        )
    if unset:
        warnings.append(
            f"secrets: {_names(unset)} not set (or empty) in this environment, so nothing is "
            "masked for it; export it, or remove it from [tool.pytest-release] secrets"
        )
    if short:
        warnings.append(
            f"secrets: the value of {_names(short)} shorter than {MIN_SECRET_LENGTH} "
            "characters: too short to mask safely (it would hide ordinary text), so it is NOT "
            "masked; use a longer secret"
        )
    return warnings


def _names(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names)
    return f"{shown} is" if len(names) == 1 else f"{shown} are"


def _longest_prefix_before(text: str, end: int, secret: str) -> int:
    """The length of the longest prefix of ``secret`` (at least :data:`MIN_PIECE`
    characters, shorter than the secret) that ``text[:end]`` ends with, or 0."""
    if secret[:MIN_PIECE] not in text[max(0, end - len(secret) + 1) : end]:
        return 0
    for length in range(min(len(secret) - 1, end), MIN_PIECE - 1, -1):
        if text.endswith(secret[:length], 0, end):
            return length
    return 0


def _longest_suffix_after(text: str, start: int, secret: str) -> int:
    """The length of the longest suffix of ``secret`` (at least :data:`MIN_PIECE`
    characters) that ``text[start:]`` starts with, or 0."""
    if secret[-MIN_PIECE:] not in text[start : start + len(secret)]:
        return 0
    for length in range(min(len(secret), len(text) - start), MIN_PIECE - 1, -1):
        if text.startswith(secret[-length:], start):
            return length
    return 0


def mask_node_ids(items: Iterable[pytest.Item], redact: Redactor) -> None:
    """Mask secrets in the names and node ids of collected items (parameter ids, auto or
    ``ids=``), before pytest prints or reports any of them.  Done at collection on every
    process, so xdist workers agree on the ids; a masked id that would repeat another
    gets a number, as pytest numbers duplicate ids."""
    items = list(items)
    # One search over every name and id (newline-separated: no pattern spans a line)
    # instead of two per item; a hit falls back to masking item by item.
    if not redact.finds("\n".join(text for item in items for text in (item.name, item.nodeid))):
        return
    taken = {item.nodeid for item in items}
    for item in items:
        name, nodeid = redact(item.name), redact(item.nodeid)
        if name == item.name and nodeid == item.nodeid:
            continue
        base_name, base_id, number = name, nodeid, 0
        while nodeid in taken:
            name, nodeid = _numbered(base_name, number), _numbered(base_id, number)
            number += 1
        taken.add(nodeid)
        item.name = name
        _set_node_id(item, nodeid)
        item.__dict__.pop("location", None)  # a cached property of pytest.Item


def _set_node_id(item: pytest.Item, nodeid: str) -> None:
    if hasattr(item, "_id"):  # pytest >= 9.1: a structured NodeId
        from _pytest.nodeid import coerce_node_id

        item._id = coerce_node_id(nodeid)
    else:
        setattr(item, "_nodeid", nodeid)  # noqa: B010


def _numbered(text: str, number: int) -> str:
    return f"{text[:-1]}{number}]" if text.endswith("]") else f"{text}{number}"
