"""The focus on a user's favourite categories (`models.focus`): prefix rule and the learned level."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from models.focus import LEVELS, Focus, focus_order


@settings(deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=40), st.floats(0.0, 1.0), st.integers(1, 40))
def test_every_prefix_keeps_its_share_while_liked_items_remain(
    liked: list[bool], share: float, n: int
) -> None:
    mask = np.array(liked)
    order = focus_order(mask, share, n)
    assert sorted(order.tolist()) == list(range(len(liked)))  # a permutation
    placed = mask[order]
    top = min(n, len(liked))
    for p in range(1, top + 1):
        over = int((~placed[:p]).sum()) > np.floor((1.0 - share) * p + 0.5)
        if over:  # only once no liked item was left to place
            assert not placed[p:top].any() and int(placed[:p].sum()) == int(mask.sum())
    # within each kind, the original order (best first) is kept
    for kind in (True, False):
        positions = [i for i in order[: min(n, len(liked))].tolist() if mask[i] == kind]
        assert positions == sorted(positions)


def test_no_focus_keeps_the_ranking() -> None:
    mask = np.array([False, True, False, True])
    assert focus_order(mask, 0.0, 4).tolist() == [0, 1, 2, 3]


def _teach(focus: Focus, taken_liked: int, taken_other: int) -> None:
    # Ranking: 6 others first, then 6 liked; the user takes liked ones sometimes and others otherwise.
    liked = np.array([False] * 6 + [True] * 6)
    for n in range(taken_liked + taken_other):
        taken = 6 + n % 3 if n < taken_liked else n % 5
        focus.learn(liked, taken, confidence=1.0, depth=5, concentration=0.9)


def test_the_level_rises_when_focusing_wins_hits() -> None:
    focus = Focus(warm=10)
    _teach(focus, taken_liked=200, taken_other=0)
    assert focus.levels_now[-1] == max(LEVELS)


def test_the_level_falls_when_focusing_costs_hits() -> None:
    focus = Focus(warm=10)
    _teach(focus, taken_liked=20, taken_other=200)
    assert focus.levels_now[-1] == 0.0
    assert focus.share(evidence=10.0, prior=2.0, concentration=0.9) == 0.0


def test_segments_learn_apart_and_evidence_scales_the_share() -> None:
    focus = Focus(warm=1, start=0.8)
    _teach(focus, taken_liked=50, taken_other=0)  # concentration 0.9: the last segment only
    assert focus.levels_now.tolist()[:-1] == [0.8, 0.8]
    assert focus.share(evidence=0.0, prior=2.0, concentration=0.9) == 0.0
    assert focus.share(evidence=2.0, prior=2.0, concentration=0.9) == max(LEVELS) / 2
