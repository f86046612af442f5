"""The forms in which a secret reaches a report, for
:class:`~pytest_release.report.redact.Redactor`.

A test of a web service rarely prints a secret as it is: it sends it URL-encoded in a
query, JSON-escaped in a body, base64-encoded in a Basic ``Authorization`` header, and
pytest shows it through ``repr`` (escaped), split into lines (a PEM key in an exception
message gets ``E   `` before every line) or cut (a near-equal assertion, ``pprint``).
This module lists, for one secret value:

* :func:`literal_forms` - exact strings to mask: the value, its ``repr``/``ascii``/id
  escapes, ``bytes`` repr, JSON string (both ``ensure_ascii`` settings, and the ``repr`` of
  that), URL-encoded (``quote(v, safe="")``, ``quote(v)``, ``quote_plus(v)``, and as
  JavaScript's ``encodeURI`` does, as newman's URLs show it), and each line
  of a multi-line value of :data:`MIN_LINE` characters or more;
* :func:`base64_cores` - the characters of ``base64(... + value + ...)`` that do not
  depend on what surrounds the value: the value starts at one of three byte alignments,
  so three strings per alphabet (standard and URL-safe) cover it wherever it sits, e.g.
  after ``user:`` in a Basic header whatever the user is.  The redactor masks the whole
  base64 word around a core, so the edges (which encode the neighbours too) go with it;
* :func:`fragment_sources` - the strings whose pieces (:data:`FRAGMENT` characters or
  more) count as fragments of a secret, and :func:`looks_random`, the rule that keeps
  plain words out of it.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

MIN_LINE = 6  # a shorter line of a multi-line secret ("-----", "") is ordinary text
FRAGMENT = 6  # a fragment is at least this long (the "20 of 21 characters")
# A fragment of plain text (letters in one case, punctuation) is masked only from this
# length: shorter ones are words a secret shares with ordinary text ("secret",
# "https://", "Authorization: Bearer").
PLAIN_FRAGMENT = 24
# What JavaScript's encodeURI leaves as it is (besides letters, digits and -_.).
_URI_RESERVED = "!#$&'()*+,/:;=?@~"
_MIN_BASE64_CORE = 8  # characters: 6 bytes of the secret, never an accidental match


def literal_forms(value: str) -> set[str]:
    """Every exact string ``value`` may be printed as (some equal ``value``)."""
    forms = {
        value,
        value.encode("unicode_escape").decode("ascii"),  # pytest's parameter ids
        repr(value)[1:-1],
        ascii(value)[1:-1],
        repr(value.encode("utf-8", "surrogatepass"))[2:-1],  # a response body: b'...'
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        quote(value, safe=_URI_RESERVED),  # JavaScript's encodeURI: newman's URLs
    }
    for ensure_ascii in (True, False):
        escaped = json.dumps(value, ensure_ascii=ensure_ascii)[1:-1]
        forms.add(escaped)
        forms.add(repr(escaped)[1:-1])  # a JSON body shown by pytest's repr
    lines = value.splitlines()
    if len(lines) > 1:
        for line in lines:
            line = line.strip()
            if len(line) >= MIN_LINE:
                forms.update((line, repr(line)[1:-1]))
    return forms


def base64_cores(value: str) -> set[str]:
    """The parts of ``base64(prefix + value + suffix)`` fixed by ``value`` alone, for the
    three alignments of ``len(prefix) % 3``, in the standard and URL-safe alphabets
    (padding and the edge characters that mix in neighbours left out)."""
    raw = value.encode("utf-8", "surrogatepass")
    cores: set[str] = set()
    for shift in range(3):
        # Groups of 3 bytes wholly inside the value, and their 4 characters each.
        first = 0 if shift == 0 else 1
        last = (shift + len(raw)) // 3
        if last <= first:
            continue
        encoded = base64.b64encode(b"\0" * shift + raw)[4 * first : 4 * last].decode("ascii")
        if len(encoded) >= _MIN_BASE64_CORE:
            cores.add(encoded)
            cores.add(encoded.replace("+", "-").replace("/", "_"))
    return cores


def fragment_sources(value: str) -> set[str]:
    """The strings a fragment of ``value`` is a piece of: the value and its escaped forms
    as pytest cuts them (``repr`` and JSON, in quotes, split by ``pprint`` or a diff)."""
    sources = {value, repr(value)[1:-1], json.dumps(value)[1:-1]}
    return {source for source in sources if len(source) >= FRAGMENT}


def grams(sources: set[str]) -> frozenset[str]:
    """Every :data:`FRAGMENT`-character piece of ``sources``: a run of text whose windows
    are all in this set is a fragment of a secret."""
    return frozenset(
        source[i : i + FRAGMENT] for source in sources for i in range(len(source) - FRAGMENT + 1)
    )


def looks_random(fragment: str) -> bool:
    """Whether a fragment of a secret is masked: it is :data:`PLAIN_FRAGMENT` characters
    or longer, or it holds a digit or a word that mixes upper and lower case other than
    a capital first letter (``9f8e7d``, ``xKfQ``) - what ordinary text rarely shares with
    a random secret."""
    if len(fragment) >= PLAIN_FRAGMENT:
        return True
    word = ""
    for char in fragment + " ":
        if char.isdigit():
            return True
        if char.isalpha():
            word += char
            continue
        if word and not (word.islower() or word.isupper() or word.istitle()):
            return True
        word = ""
    return False
