"""The sample-ratio-mismatch check: do the users assigned to each variant match the configured weights?

A chi-square goodness-of-fit test with an exact survival function (closed forms for integer degrees of
freedom), so no SciPy is needed. A mismatch (p < 0.001) means the assignment or the logging is broken.
"""

from __future__ import annotations

__all__ = ["SRM_ALPHA", "SrmResult", "chi2_sf", "srm_check"]

import math
from collections.abc import Mapping
from dataclasses import dataclass

#: The usual threshold: at p < 0.001 the split is treated as broken rather than unlucky.
SRM_ALPHA = 0.001


def chi2_sf(x: float, dof: int) -> float:
    """P(X >= x) for a chi-square variable with ``dof`` degrees of freedom.

    Even ``dof``: ``e^(-x/2) * sum_{i<dof/2} (x/2)^i / i!``; odd ``dof``: ``erfc(sqrt(x/2))`` plus the
    half-integer terms.

    >>> round(chi2_sf(3.841458820694124, 1), 6), round(chi2_sf(5.991464547107979, 2), 6)
    (0.05, 0.05)
    >>> chi2_sf(0.0, 3)
    1.0
    """
    if dof < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {dof}")
    if x <= 0.0:
        return 1.0
    half = x / 2.0
    if dof % 2 == 0:
        terms = (i * math.log(half) - math.lgamma(i + 1) for i in range(dof // 2))
        total = sum(math.exp(t - half) for t in terms)
    else:
        total = math.erfc(math.sqrt(half))
        terms = ((i - 0.5) * math.log(half) - math.lgamma(i + 0.5) for i in range(1, (dof + 1) // 2))
        total += sum(math.exp(t - half) for t in terms)
    return min(1.0, max(0.0, total))


@dataclass(frozen=True, slots=True)
class SrmResult:
    """Observed counts, configured ratios, the chi-square statistic, its p-value and the verdict."""

    counts: dict[str, int]
    expected_ratios: dict[str, float]
    chi2: float
    p_value: float
    mismatch: bool

    def to_json(self) -> dict[str, object]:
        return {
            "counts": self.counts,
            "expected_ratios": self.expected_ratios,
            "chi2": self.chi2,
            "p_value": self.p_value,
            "mismatch": self.mismatch,
        }


def srm_check(counts: Mapping[str, int], ratios: Mapping[str, float], alpha: float = SRM_ALPHA) -> SrmResult:
    """Chi-square test of ``counts`` per variant against the configured ``ratios`` (which sum to 1).

    With no users yet, or a single variant, there is nothing to test: p = 1.

    >>> srm_check({"a": 5000, "b": 5000}, {"a": 0.5, "b": 0.5}).mismatch
    False
    >>> r = srm_check({"a": 5200, "b": 4800}, {"a": 0.5, "b": 0.5}); round(r.chi2, 1), r.mismatch
    (16.0, True)
    """
    observed = {name: int(counts.get(name, 0)) for name in ratios}
    total = sum(observed.values())
    if total == 0 or len(ratios) < 2:
        return SrmResult(observed, dict(ratios), 0.0, 1.0, False)
    chi2 = sum((observed[n] - total * r) ** 2 / (total * r) for n, r in ratios.items())
    p_value = chi2_sf(chi2, len(ratios) - 1)
    return SrmResult(observed, dict(ratios), chi2, p_value, p_value < alpha)
