"""Content similarity between items: items that share tags are linked, as co-occurrence links are.

Each tag keeps the latest items that carry it; a new item is linked to them, so the rows of
``links`` count shared tags and keep the strongest neighbours. Cost per item is bounded by the
number of its tags times ``per_tag``, whatever the catalog size.
"""

from __future__ import annotations

__all__ = ["ContentLinks"]

from collections import deque
from collections.abc import Iterable
from typing import Any

import numpy as np

from models.cooccurrence import CoOccurrence


class ContentLinks:
    """Item-to-item links by shared tags (integer item ids, tag names).

    >>> content = ContentLinks()
    >>> content.learn_item(1, ["noir", "paris"]); content.learn_item(2, ["paris"])
    >>> content.learn_item(3, ["noir", "paris"]); content.learn_item(3, ["noir", "paris"])
    >>> sorted(content.links.neighbors(3).items())
    [(1, 0.5), (2, 0.25)]
    """

    def __init__(self, *, per_tag: int = 50, max_tags: int = 20, max_neighbors: int = 100) -> None:
        self.per_tag = per_tag
        self.max_tags = max_tags
        self.links = CoOccurrence(window=per_tag, max_neighbors=max_neighbors)
        self._postings: dict[str, deque[int]] = {}
        self._tags: dict[int, set[str]] = {}

    def learn_item(self, item: int, tags: Iterable[str]) -> None:
        """Link ``item`` to the latest items carrying each of its tags it did not have before."""
        known = self._tags.setdefault(item, set())
        for tag in tags:
            if tag in known or len(known) >= self.max_tags:
                continue
            known.add(tag)
            posting = self._postings.setdefault(tag, deque(maxlen=self.per_tag))
            if posting:
                self.links.learn_one(np.fromiter(posting, dtype=np.int64, count=len(posting)), item)
            posting.append(item)

    def kernel_state(self) -> tuple[Any, ...]:
        """The links as `kernels.links_of` reads them."""
        return self.links.kernel_state()
