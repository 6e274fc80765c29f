"""Why an item is recommended, as stored in Redis and as served: reason codes, signal names, the compact
per-list form kept with the user's list (`schemas.stored_list`, its last line) and the short human text.

Contract only: no I/O, no model imports. Decoding never raises; a malformed entry means "no reason".
"""

from __future__ import annotations

__all__ = [
    "PALETTE_INDEX",
    "REASON_CODES",
    "SIGNALS",
    "Reason",
    "Stored",
    "Tokens",
    "decode",
    "encode",
    "encode_tokens",
    "reason_json",
    "token_letters",
]

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

#: Reasons the worker stores (model reasons), with their letter in the stored form.
_STORED = {
    "item": "I",
    "category": "C",
    "popular": "P",
    "well_rated": "W",
    "similar_users": "U",
    "exploring": "E",
}
_STORED_CODE = {letter: code for code, letter in _STORED.items()}
#: Every reason code a reader can get: the stored ones, then those serving adds (never stored).
REASON_CODES = (*_STORED, "pinned", "promoted", "trending")

#: Signal name (the model's ranking features) -> its letter in the stored form.
SIGNALS = {
    "sequence": "s",
    "cooccurrence": "c",
    "transitions": "t",
    "content": "g",
    "popularity": "p",
    "quality": "q",
    "affinity": "a",
    "taste": "k",
}
_SIGNAL_NAME = {letter: name for name, letter in SIGNALS.items()}

#: One token: reason letter, signal letters (strongest first), optional anchor index; ``-`` = none.
_TOKEN = re.compile(r"([A-Z])([a-z]*)(\d*)")

_FIXED_TEXT = {
    "popular": "popular right now",
    "well_rated": "well rated",
    "similar_users": "popular with people like you",
    "exploring": "new, exploring",
    "pinned": "pinned",
    "promoted": "promoted",
}


@dataclass(frozen=True, slots=True)
class Reason:
    """Why one item is in a list: ``code`` (see `REASON_CODES`), what it points at (``anchor``: the
    user's item for ``item``, the category for ``category``, the locale for ``trending``) and the
    strongest model signals, strongest first.

    >>> Reason("item", "Toy Story", ("sequence", "cooccurrence")).text
    'because you liked Toy Story'
    >>> Reason("trending", "en-GB").to_json()
    {'reason': 'popular in your region', 'reason_code': 'trending', 'anchor': 'en-GB', 'signals': []}
    """

    code: str
    anchor: str | None = None
    signals: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The short human reason (the item id stands for its title: the engine knows no titles)."""
        if self.code == "item":
            return f"because you liked {self.anchor}" if self.anchor else "because of what you liked"
        if self.code == "category":
            return f"because you like {self.anchor}" if self.anchor else "based on your tastes"
        if self.code == "trending":
            if not self.anchor:
                return "trending now"
            has_region = len(self.anchor.replace("_", "-").split("-")) > 1
            return "popular in your region" if has_region else "popular in your language"
        return _FIXED_TEXT.get(self.code, self.code.replace("_", " "))

    def to_json(self) -> dict[str, object]:
        """The reason fields of one served item (see `reason_json` for an item without one)."""
        return {
            "reason": self.text,
            "reason_code": self.code,
            "anchor": self.anchor,
            "signals": list(self.signals),
        }

    @classmethod
    def from_json(cls, item: dict[str, object]) -> Reason | None:
        """The reason of one served item's JSON (None when it has none).

        >>> Reason.from_json(Reason("category", "jazz", ("affinity",)).to_json())
        Reason(code='category', anchor='jazz', signals=('affinity',))
        """
        code, anchor, signals = item.get("reason_code"), item.get("anchor"), item.get("signals") or []
        if not isinstance(code, str) or not isinstance(signals, list):
            return None
        return cls(code, anchor if isinstance(anchor, str) else None, tuple(str(s) for s in signals))


def reason_json(reason: Reason | None) -> dict[str, object]:
    """The reason fields of one served item; all null (and no signals) for an item without a reason.

    >>> reason_json(None)
    {'reason': None, 'reason_code': None, 'anchor': None, 'signals': []}
    """
    if reason is None:
        return {"reason": None, "reason_code": None, "anchor": None, "signals": []}
    return reason.to_json()


#: (code, signals) -> the token's letters ('' for a code that is not stored). Few codes times few signal
#: pairs, so it stays small; it spares the worker a join per listed item.
_LETTERS: dict[tuple[str, tuple[str, ...]], str] = {}


def token_letters(code: str, signals: tuple[str, ...]) -> str:
    """The letters of a reason's token without its anchor index ('' for a code that is not stored).

    >>> token_letters("item", ("sequence", "cooccurrence")), token_letters("trending", ())
    ('Isc', '')
    """
    found = _LETTERS.get((code, signals))
    if found is None:
        letter = _STORED.get(code)
        found = "" if letter is None else letter + "".join(SIGNALS[s] for s in signals if s in SIGNALS)
        _LETTERS[(code, signals)] = found
    return found


def _token(reason: Reason | None, anchors: dict[str, int]) -> str:
    letters = token_letters(reason.code, reason.signals) if reason is not None else ""
    if reason is None or not letters:
        return "-"
    if reason.anchor is None:
        return letters
    return letters + str(anchors.setdefault(reason.anchor, len(anchors)))


#: The palette indices of the stored form: one character per item, so at most 62 distinct tokens.
PALETTE_INDEX = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_INDEX_OF = {char: n for n, char in enumerate(PALETTE_INDEX)}


class Tokens(NamedTuple):
    """A list's reasons already as tokens (one per item, ``-`` for none) and the anchors their indices
    point at: what the worker makes straight from the model's explanation (`models.explain`), skipping a
    `Reason` per item. `encode_tokens` stores it as `encode` stores the same reasons."""

    tokens: list[str]
    anchors: list[str]


class Stored(NamedTuple):
    """A list's reasons already in the stored form (what `encode_tokens` makes): the worker explains a
    batch's lists in one pass (`models.explain_batch`)."""

    text: str

    def tokens(self) -> Tokens:
        """The tokens and anchors it holds (to store them in another order).

        >>> Stored(encode_tokens(["Isc0", "P", "Isc0"], ["i3"])).tokens()
        Tokens(tokens=['Isc0', 'P', 'Isc0'], anchors=['i3'])
        """
        return Tokens(*_tokens(self.text))


def encode(reasons: Sequence[Reason | None]) -> str:
    """The stored form of a list's reasons, one per item in the list's order (best first).

    Tab-separated: ``palette``, ``picks``, then the anchors. A token is the reason letter, the signal
    letters (strongest first), then the index of its anchor if it has one (``-``: no reason);
    ``palette`` holds each distinct token once, space-separated, and ``picks`` one character per item:
    the index of its token in the palette (``0-9``, ``a-z``, ``A-Z``). Lists repeat a few tokens, so
    this is about half the size of a token per item. Ids and labels hold no control characters, so a
    tab never occurs inside a part. Serve-time reasons and unknown signals are not stored. A list of
    more than 62 distinct tokens is stored in the first form, JSON ``{"r": "<token> <token> ...", "a":
    [anchors]}``, which `decode` reads too.

    >>> liked = Reason("item", "i3", ("sequence", "cooccurrence"))
    >>> encode([liked, Reason("popular"), None, Reason("category", "jazz", ("affinity",)), liked])
    'Isc0 P - Ca1\\t01230\\ti3\\tjazz'
    """
    anchors: dict[str, int] = {}
    tokens = [_token(reason, anchors) for reason in reasons]
    return encode_tokens(tokens, list(anchors))


def encode_tokens(tokens: Sequence[str], anchors: Sequence[str]) -> str:
    """The stored form (see `encode`) of one token per item and the anchors the tokens index.

    >>> encode_tokens(["Isc0", "P", "-", "Ca1", "Isc0"], ["i3", "jazz"])
    'Isc0 P - Ca1\\t01230\\ti3\\tjazz'
    """
    palette = list(dict.fromkeys(tokens))
    if len(palette) > len(PALETTE_INDEX):
        return json.dumps(
            {"r": " ".join(tokens), "a": list(anchors)}, separators=(",", ":"), ensure_ascii=False
        )
    at = {token: PALETTE_INDEX[n] for n, token in enumerate(palette)}
    return "\t".join([" ".join(palette), "".join(at[token] for token in tokens), *anchors])


def _tokens(stored: str) -> tuple[list[str], list[str]]:
    """One token per item and the anchors, from either stored form (raises on a malformed one)."""
    if stored.startswith("{"):
        data = json.loads(stored)
        return str(data["r"]).split(" "), [str(a) for a in data["a"]]
    palette, picks, *anchors = stored.split("\t")
    tokens = palette.split(" ")
    return [tokens[_INDEX_OF[char]] for char in picks], anchors


def decode(stored: str | None, items: Sequence[str]) -> dict[str, Reason]:
    """Item -> reason from the stored form, pairing tokens with ``items`` (the stored list, best first,
    or its head); items without a valid token are left out.

    >>> got = decode("Isc0 P - Ca1\\t0123\\ti3\\tjazz", ["x", "y", "z"])
    >>> got["x"], got["y"].code, "z" in got
    (Reason(code='item', anchor='i3', signals=('sequence', 'cooccurrence')), 'popular', False)
    >>> decode('{"r":"Isc0 P - Ca1","a":["i3","jazz"]}', ["x", "y", "z", "w"])["w"].anchor
    'jazz'
    >>> decode("not json", ["x"]), decode(None, ["x"])
    ({}, {})
    """
    if not stored:
        return {}
    try:
        tokens, anchors = _tokens(stored)
    except (ValueError, KeyError, TypeError, IndexError):
        return {}
    out: dict[str, Reason] = {}
    for item, token in zip(items, tokens, strict=False):
        match = _TOKEN.fullmatch(token)
        if match is None or match[1] not in _STORED_CODE:
            continue
        letter, signals, at = match.groups()
        if at and int(at) >= len(anchors):
            continue
        names = tuple(_SIGNAL_NAME[s] for s in signals if s in _SIGNAL_NAME)
        out[item] = Reason(_STORED_CODE[letter], anchors[int(at)] if at else None, names)
    return out
