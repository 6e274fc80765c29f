"""The reasons of a batch's lists in one pass: the bytes `models.explain.explain_tokens` and
`schemas.reasons.encode_tokens` give each list, made with one compiled call for all the lists.

Explaining list by list cost ~50 us per list in the worker (gathering its inputs, a compiled call, a
token per item, then the stored form), most of it Python around ~5 us of arithmetic. Here the inputs
of every list are gathered into a few arrays, one call finds each list's reasons, anchors and palette
(`explain_lists`), and Python only names the anchors and joins the palette's few tokens. A list whose
stored form this cannot make alike (an anchor without a name, an item and a category of the same name,
more than 62 distinct tokens) is explained the list-by-list way.

>>> from models.recommender import HybridRecommender
>>> from schemas.reasons import encode_tokens
>>> from models.profile import UserProfile
>>> from schemas.events import Event, ItemRecord
>>> model = HybridRecommender()
>>> for item in ("a", "b", "c"):
...     model.learn_item(ItemRecord(item_id=item, categories=("jazz",)))
>>> profile = UserProfile("u1")
>>> event = Event(event_id="e1", user_id="u1", item_id="a", type="click", ts=10**12)
>>> model.learn_one(event, profile)
>>> _ = profile.observe(event, model.signal(event))
>>> listed = model.recommend(profile, 2)
>>> [stored] = stored_reasons(model, [(profile, listed)])
>>> stored.text == encode_tokens(*explain_tokens(model.explain_inputs(profile, [i for i, _ in listed])))
True
"""

from __future__ import annotations

__all__ = ["explain_lists", "stored_reasons"]

from collections.abc import Sequence

import numpy as np
from numba import njit

from models.explain import TOKEN_TABLE, explain_tokens, linked_into, reason_keys
from models.profile import UserProfile
from models.recommender import CO_RECENT, HybridRecommender
from schemas.reasons import PALETTE_INDEX, Stored, Tokens

_LETTERS, _KEYS_PER_KIND, _ITEM, _RULES = TOKEN_TABLE
#: Each distinct token letters once, and per key the index of its letters there.
_DISTINCT = list(dict.fromkeys(_LETTERS))
_LETTER_ID = np.array([_DISTINCT.index(letters) for letters in _LETTERS], np.int64)
#: A palette index (0-61) -> its character in the stored form (`schemas.reasons`).
_INDEX = PALETTE_INDEX.encode("ascii")
_PICK = bytes.maketrans(bytes(range(len(_INDEX))), _INDEX)


@njit(cache=True, nogil=True)
def explain_lists(  # type: ignore[no-untyped-def]
    wanted, wanted_at, ids, ids_at, table, weights, recent, recent_at, co, content, mark, matrix, counts,
    own_rows, known, letter_id, per_kind, item_kind, rules,
):  # fmt: skip
    """Per list L (its ``wanted`` items, its ranking's ``ids`` and feature ``table`` rows, its user's
    ``recent`` positives, newest first, -1 for unknown, each sliced by the ``*_at`` offsets): the
    `models.explain.reason_keys` of its items, linked through the co-occurrence then the content
    link states, with the user's own positives read from row ``own_rows[L]`` of ``counts`` (-1: none) as
    `models.taste.CategoryShares.own` reads them for ``known`` categories. Returns, flat: per item the
    index of its token in its list's palette; the palettes' tokens as (letters id, anchor index or -1);
    the anchors as (is an item, item or category id); the offsets of each list's palette and anchors.
    """
    item_signal, category_signal, quality = rules
    lists = wanted_at.size - 1
    picks = np.empty(wanted.size, np.int64)
    palette = np.empty((wanted.size, 2), np.int64)
    anchors = np.empty((wanted.size, 2), np.int64)
    palette_at, anchors_at = np.zeros(lists + 1, np.int64), np.zeros(lists + 1, np.int64)
    own = np.zeros(known)
    width = min(known, counts.shape[1])
    p, a = 0, 0
    for n in range(lists):
        lo, hi = wanted_at[n], wanted_at[n + 1]
        items, positives = wanted[lo:hi], recent[recent_at[n] : recent_at[n + 1]]
        linked = np.full(hi - lo, -1, np.int64)
        linked_into(linked, items, positives, co[0], co[1], co[3], mark)
        linked_into(linked, items, positives, content[0], content[1], content[3], mark)
        own[:] = 0.0
        if own_rows[n] >= 0:
            own[:width] = counts[own_rows[n], :width]
        start, stop = ids_at[n], ids_at[n + 1]
        found = reason_keys(
            items, ids[start:stop], table[start:stop], weights, linked, matrix, own, item_signal,
            category_signal, quality,
        )  # fmt: skip
        p0, a0 = p, a
        for w in range(hi - lo):
            key, at = found[0, w], found[1, w]
            anchor = -1
            if at >= 0:
                is_item = key // per_kind == item_kind
                named = positives[at] if is_item else at
                for j in range(a0, a):
                    if anchors[j, 0] == is_item and anchors[j, 1] == named:
                        anchor = j - a0
                        break
                if anchor < 0:
                    anchors[a, 0], anchors[a, 1] = is_item, named
                    anchor = a - a0
                    a += 1
            token = -1
            for q in range(p0, p):
                if palette[q, 0] == letter_id[key] and palette[q, 1] == anchor:
                    token = q - p0
                    break
            if token < 0:
                palette[p, 0], palette[p, 1] = letter_id[key], anchor
                token = p - p0
                p += 1
            picks[lo + w] = token
        palette_at[n + 1], anchors_at[n + 1] = p, a
    return picks, palette[:p], anchors[:a], palette_at, anchors_at


def stored_reasons(
    model: HybridRecommender, lists: Sequence[tuple[UserProfile, Sequence[tuple[str, float]]]]
) -> list[Stored | Tokens]:
    """The reasons of each (profile, items) in ``lists`` (each the user's latest ranking, as
    `HybridRecommender.explain_inputs` reads it), in the stored form."""
    names: list[str] = []
    recent: list[str] = []
    wanted_at, recent_at, ids_at, own_rows = [0], [0], [0], []
    heads, tables = [], []
    shown, users = model._shown, model.shares._users  # noqa: SLF001 - the model's own state, read only
    for profile, items in lists:
        names += [item for item, _ in items]
        recent += reversed(profile.recent[-CO_RECENT:])  # the positives an item reason may name
        wanted_at.append(len(names))
        recent_at.append(len(recent))
        head = shown.get(profile.user_id)
        if head is not None and head[0].size:
            heads.append(head[0])
            tables.append(head[1])
        ids_at.append(ids_at[-1] + (head[0].size if head is not None else 0))
        own_rows.append(users.get(profile.user_id))
    vocabulary, width = model._items, len(model.ranker.weights)  # noqa: SLF001
    picks, palette, anchors, palette_at, anchors_at = explain_lists(
        vocabulary.ids_of(names), np.array(wanted_at),
        np.concatenate(heads) if heads else np.zeros(0, np.int32), np.array(ids_at),
        np.concatenate(tables) if tables else np.zeros((0, width), np.float32),
        model.ranker.weights, vocabulary.ids_of(recent), np.array(recent_at),
        model.cooccurrence.kernel_state(), model.content.kernel_state(),
        model._totals, model.item_categories.matrix, model.shares._counts,  # noqa: SLF001
        np.array(own_rows, np.int64), len(model.affinity.categories), _LETTER_ID, _KEYS_PER_KIND, _ITEM,
        _RULES,
    )  # fmt: skip
    chars = picks.astype(np.uint8).tobytes().translate(_PICK) if picks.size else b""
    item_names, category_names = vocabulary.names, model.affinity.categories.names
    # Flat lists (no list per row): a flush explains a few hundred lists.
    letters, at = palette[:, 0].tolist(), palette[:, 1].tolist()
    is_item, anchor = anchors[:, 0].tolist(), anchors[:, 1].tolist()
    tokens_at, anchors_at = palette_at.tolist(), anchors_at.tolist()
    out: list[Stored | Tokens] = []
    for n, (profile, items) in enumerate(lists):
        lo, hi = anchors_at[n], anchors_at[n + 1]
        ours = zip(is_item[lo:hi], anchor[lo:hi], strict=True)
        named = [item_names[i] if it else category_names[i] for it, i in ours]
        lo, hi = tokens_at[n], tokens_at[n + 1]
        if hi - lo > len(_INDEX) or "" in named or len(set(named)) < len(named):
            out.append(explain_tokens(model.explain_inputs(profile, [item for item, _ in items])))
            continue
        own = zip(letters[lo:hi], at[lo:hi], strict=True)
        kept = " ".join([_DISTINCT[letter] + (str(a) if a >= 0 else "") for letter, a in own])
        out.append(Stored("\t".join([kept, chars[wanted_at[n] : wanted_at[n + 1]].decode("ascii"), *named])))
    return out
