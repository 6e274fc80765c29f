"""The worker's garbage collector: start-up's objects frozen, young collections rarer.

A started worker holds ~250,000 objects the cyclic collector would otherwise walk at every full
collection (modules, the Faust app, the restored model's Python parts), and its per-event work
allocates enough small containers to run a young collection every few events. With Python's
defaults one worker spent ~20 us of CPU per event in collections, in pauses of ~140 ms at each full
one (docs/benchmarks.md); frozen and with a first-generation threshold of 20,000, ~1 us.
"""

from __future__ import annotations

__all__ = ["tune"]

import gc


def tune(threshold: int) -> None:
    """Collect once, freeze what survived (never scanned again) and raise the first-generation
    threshold to ``threshold`` (0 keeps the current thresholds; the older generations keep theirs).

    >>> before = gc.get_threshold()
    >>> tune(20_000)
    >>> gc.get_threshold()[0], gc.get_freeze_count() > 0
    (20000, True)
    >>> gc.unfreeze(); gc.set_threshold(*before)
    """
    gc.collect()
    gc.freeze()
    if threshold > 0:
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(threshold, older, oldest)
