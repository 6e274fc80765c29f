"""What a replay counts per ranker: hits and gains overall and per cold-start slice, coverage, taste share.

Pure bookkeeping; the replay (`engine.evaluation.replay`) decides what is scored and into which slices.
"""

from __future__ import annotations

__all__ = ["SLICES", "Board", "Scoreboard", "taste_share"]

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

#: Cold-start slices: events among the user's first 5 in the log; the same for users who gave onboarding
#: likes; targets whose item had its first event (or catalog record) less than a day before.
SLICES = ("new_users", "onboarded_new_users", "new_items")


@dataclass(slots=True)
class Scoreboard:
    """Hits and discounted gains of one ranker over scored events.

    >>> board = Scoreboard()
    >>> board.score(["a", "b"], "b"); board.score(["a"], "z")
    >>> board.hr, round(board.ndcg, 3)
    (0.5, 0.315)
    """

    scored: int = 0
    hits: int = 0
    gain: float = 0.0

    def score(self, ranked: Sequence[str], target: str) -> None:
        self.scored += 1
        if target in ranked:
            self.hits += 1
            self.gain += 1.0 / math.log2(list(ranked).index(target) + 2)

    @property
    def hr(self) -> float:
        return self.hits / self.scored if self.scored else 0.0

    @property
    def ndcg(self) -> float:
        return self.gain / self.scored if self.scored else 0.0

    def to_json(self) -> dict[str, float | int]:
        return {"scored": self.scored, "hr": round(self.hr, 4), "ndcg": round(self.ndcg, 4)}


@dataclass(slots=True)
class Board:
    """Everything a replay measures of one ranker: overall, per slice, coverage and taste share."""

    overall: Scoreboard = field(default_factory=Scoreboard)
    slices: dict[str, Scoreboard] = field(default_factory=lambda: {name: Scoreboard() for name in SLICES})
    shown: set[str] = field(default_factory=set)
    #: Mean share of the final top k in the user's true top-2 categories, and over how many users.
    top2_share: float | None = None
    share_users: int = 0

    def score(self, ranked: Sequence[str], target: str, slices: Iterable[str]) -> None:
        self.overall.score(ranked, target)
        self.shown.update(ranked)
        for name in slices:
            self.slices[name].score(ranked, target)

    def to_json(self, known_items: int) -> dict[str, object]:
        out: dict[str, object] = {
            "hr": round(self.overall.hr, 4),
            "ndcg": round(self.overall.ndcg, 4),
            "coverage": round(len(self.shown) / known_items, 4) if known_items else 0.0,
            "slices": {name: board.to_json() for name, board in self.slices.items()},
        }
        if self.top2_share is not None:
            out["top2_share"] = round(self.top2_share, 4)
            out["share_users"] = self.share_users
        return out


def taste_share(items: Sequence[str], liked: set[str], categories: Mapping[str, Sequence[str]]) -> float:
    """Share of ``items`` whose primary (first) category is one of ``liked``.

    >>> taste_share(["a", "b", "c", "d"], {"c1"}, {"a": ["c1"], "b": ["c2", "c1"], "c": ["c1"]})
    0.5
    """
    if not items:
        return 0.0
    return sum(bool(categories.get(i)) and categories[i][0] in liked for i in items) / len(items)
