"""The stored form of a list's reasons (`schemas.reasons`): round trip, size, and what a reader tolerates."""

from __future__ import annotations

import pytest

from schemas.reasons import REASON_CODES, SIGNALS, Reason, decode, encode


def test_every_model_reason_round_trips_with_its_anchor_and_signals() -> None:
    reasons: list[Reason | None] = [
        Reason("item", "Toy Story (1995)", ("sequence", "cooccurrence")),
        Reason("category", "Sci-Fi", ("affinity", "quality")),
        Reason("popular", None, ("popularity",)),
        Reason("well_rated", None, ("quality", "transitions")),
        Reason("similar_users", None, ("content",)),
        Reason("exploring"),
        None,
        Reason("item", "Toy Story (1995)", ("content",)),
    ]
    items = [f"i{n}" for n in range(len(reasons))]
    assert decode(encode(reasons), items) == {
        item: reason for item, reason in zip(items, reasons, strict=True) if reason is not None
    }


def test_top_20_fits_well_under_half_a_kilobyte() -> None:
    # Worst realistic case: every item anchored on a different 12-character id, two signals each.
    reasons = [Reason("item", f"item-{n:07d}", ("sequence", "cooccurrence")) for n in range(20)]
    assert len(encode(reasons).encode()) <= 500
    assert len(encode([Reason("category", "Comedy", ("affinity",))] * 20).encode()) < 40


def test_a_list_repeating_a_few_reasons_stays_under_redis_default_listpack_value() -> None:
    # Redis keeps a hash compact (listpack) while every value is at most hash-max-listpack-value (64).
    liked = [Reason("item", f"i{n}", ("sequence", "cooccurrence")) for n in range(3)]
    common = [Reason("popular", None, ("popularity", "quality")), Reason("category", "Drama", ("affinity",))]
    reasons = [(liked + common)[n % 5] for n in range(20)]
    stored = encode(reasons)
    assert len(stored.encode()) <= 64, stored
    assert decode(stored, [f"x{n}" for n in range(20)]) == {f"x{n}": r for n, r in enumerate(reasons)}


def test_the_first_stored_form_is_still_read_and_written_past_62_distinct_tokens() -> None:
    first = '{"r":"Isc0 P - Ca1","a":["i3","jazz"]}'
    assert decode(first, ["w", "x", "y", "z"]) == {
        "w": Reason("item", "i3", ("sequence", "cooccurrence")),
        "x": Reason("popular"),
        "z": Reason("category", "jazz", ("affinity",)),
    }
    many: list[Reason | None] = [Reason("item", f"i{n}") for n in range(70)]
    stored = encode(many)
    assert stored.startswith('{"r":')
    assert decode(stored, [f"x{n}" for n in range(70)]) == {f"x{n}": r for n, r in enumerate(many) if r}


def test_serve_time_reasons_and_unknown_signals_are_not_stored() -> None:
    stored = encode([Reason("pinned"), Reason("popular", None, ("popularity", "novelty"))])
    assert decode(stored, ["a", "b"]) == {"b": Reason("popular", None, ("popularity",))}
    assert set(REASON_CODES) >= {"pinned", "promoted", "trending"} and len(set(SIGNALS.values())) == len(
        SIGNALS
    )


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "{}",
        "[1, 2]",
        '{"r": 5, "a": 3}',
        '{"r": "I9 x Zs", "a": []}',  # anchor out of range, malformed token, unknown reason letter
        "P\t01",  # a pick past the palette
        "P\t0?",  # not a pick character
        "P",
        "I9 x Zs\t012",
    ],
)
def test_a_broken_stored_form_means_no_reasons_never_an_error(stored: str) -> None:
    assert decode(stored, ["a", "b", "c"]) == {}


def test_a_shorter_read_takes_the_head_and_a_longer_one_leaves_the_tail_out() -> None:
    stored = encode([Reason("popular"), Reason("exploring"), Reason("well_rated")])
    assert list(decode(stored, ["a"])) == ["a"]
    assert list(decode(stored, ["a", "b", "c", "d"])) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("reason", "text"),
    [
        (Reason("item", "i42"), "because you liked i42"),
        (Reason("category", "Comedy"), "because you like Comedy"),
        (Reason("popular"), "popular right now"),
        (Reason("well_rated"), "well rated"),
        (Reason("similar_users"), "popular with people like you"),
        (Reason("exploring"), "new, exploring"),
        (Reason("pinned"), "pinned"),
        (Reason("promoted"), "promoted"),
        (Reason("trending", "pt-BR"), "popular in your region"),
        (Reason("trending", "pt"), "popular in your language"),
        (Reason("trending"), "trending now"),
    ],
)
def test_human_text(reason: Reason, text: str) -> None:
    assert reason.text == text
    assert Reason.from_json(reason.to_json()) == reason
