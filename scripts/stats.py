"""Statistics of ``results/claims.md`` (issue 20): one comparison of two groups of seeds, decided by a test that
holds at its n.

A group is summarised by a :class:`Stat` (mean and sample std of a metric over its completed seeds, its diverged or
failed seeds). :func:`compare` decides ``a`` against ``b`` in one of four outcomes:

- **ahead / behind**: Welch's t-test, two-sided at α = :data:`ALPHA` with Student's t quantile at the Welch–
  Satterthwaite degrees of freedom (never a fixed "2 SE"), *and* the difference beyond :data:`FLOOR_PP`;
- **tie**: equivalence shown, the 90 % confidence interval of the difference (two one-sided tests at α = 0.05,
  t quantiles) inside ±:data:`EQUIVALENCE_MARGIN_PP`;
- **undecided**: neither; the line says the smallest difference this n could detect and how many seeds per group
  would settle it if the means and spreads stayed as observed.

A group with diverged or failed runs loses against one without (a failure is a result, never a missing value); two
such groups are undecided.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from scipy.stats import t as student_t

ALPHA = 0.05  # two-sided test of a difference
FLOOR_PP = 0.5  # a difference counts only beyond this many percentage points, however significant
EQUIVALENCE_MARGIN_PP = 1.0  # a tie: the 90 % interval of the difference inside ± this margin (TOST at 0.05)
MIN_SEEDS = 3  # finished seeds per group before any comparison is made
MAX_SEEDS = 100  # "seeds that would settle it" searches up to this many per group
AHEAD, BEHIND, TIE, UNDECIDED = "ahead", "behind", "tie", "undecided"


class Stat(NamedTuple):
    """One group's metric as compared (percent): mean and sample std over its ``n`` completed seeds, the seeds
    that diverged or failed, and its finished runs (completed + diverged + failed)."""

    label: str
    mean: float
    std: float
    n: int
    failed: str = ""
    finished: int = 0
    val: float = math.nan

    def text(self) -> str:
        extra = f"; diverged/failed seeds {self.failed}" if self.failed else ""
        spread = f" ± {self.std:.2f}" if math.isfinite(self.std) else ""
        return f"{self.label} {self.mean:.2f}{spread} % (n={self.n}{extra})"


@dataclass(frozen=True)
class Outcome:
    """``a`` against ``b``: the word, the difference a − b (pp), its standard error, Welch's degrees of freedom,
    the two-sided p-value, the 90 % interval, and the sentence that says all of it."""

    word: str  # ahead | behind | tie | undecided
    diff: float = math.nan
    se: float = math.nan
    df: float = math.nan
    p: float = math.nan
    low: float = math.nan
    high: float = math.nan
    text: str = ""

    @property
    def sign(self) -> int | None:
        """+1 ahead, −1 behind, 0 tie, None undecided."""
        return {AHEAD: 1, BEHIND: -1, TIE: 0}.get(self.word)


def t_quantile(q: float, df: float) -> float:
    """Student's t quantile at probability ``q`` with ``df`` (any positive real) degrees of freedom."""
    return float(student_t.ppf(q, df))


def welch(a: Stat, b: Stat) -> tuple[float, float, float]:
    """(a − b, its standard error, Welch–Satterthwaite degrees of freedom); needs n ≥ 2 in both groups. With no
    spread in either group the degrees of freedom are n_a + n_b − 2 (the formula is 0/0)."""
    va, vb = a.std ** 2 / a.n, b.std ** 2 / b.n
    denominator = (va ** 2 / (a.n - 1) if va else 0.0) + (vb ** 2 / (b.n - 1) if vb else 0.0)
    df = (va + vb) ** 2 / denominator if denominator > 0 else float(a.n + b.n - 2)
    return a.mean - b.mean, math.sqrt(va + vb), df


def detectable(se: float, df: float) -> float:
    """The smallest |difference| a two-sided test at :data:`ALPHA` calls significant at this standard error and
    degrees of freedom, never below :data:`FLOOR_PP`."""
    return max(FLOOR_PP, t_quantile(1 - ALPHA / 2, df) * se)


def _decide(diff: float, se: float, df: float) -> str:
    if abs(diff) > detectable(se, df):
        return AHEAD if diff > 0 else BEHIND
    half = t_quantile(0.95, df) * se
    return TIE if -EQUIVALENCE_MARGIN_PP < diff - half and diff + half < EQUIVALENCE_MARGIN_PP else UNDECIDED


def seeds_to_settle(a: Stat, b: Stat) -> int | None:
    """The seeds per group (the same n in both, their spreads as observed) at which the observed difference would
    be decided (ahead/behind or tie); None if not within :data:`MAX_SEEDS`."""
    for n in range(max(a.n, b.n, 2), MAX_SEEDS + 1):
        if _decide(*welch(a._replace(n=n), b._replace(n=n))) != UNDECIDED:
            return n
    return None


def compare(a: Stat, b: Stat) -> Outcome:
    """``a`` against ``b`` (module docstring)."""
    if a.failed or b.failed:
        if a.failed and b.failed:
            return Outcome(UNDECIDED, text="both have diverged or failed runs: undecided")
        loser = a if a.failed else b
        return Outcome(BEHIND if a.failed else AHEAD, text=f"{loser.label} diverged/failed (seeds {loser.failed})")
    if min(a.n, b.n) < 2:
        return Outcome(UNDECIDED, text=f"fewer than 2 completed seeds ({a.label} n={a.n}, {b.label} n={b.n})")
    diff, se, df = welch(a, b)
    word = _decide(diff, se, df)
    p = float(2 * student_t.sf(abs(diff) / se, df)) if se > 0 else (0.0 if diff else 1.0)
    half = t_quantile(0.95, df) * se
    text = f"{diff:+.2f} pp, p = {p:.3g} (Welch, df {df:.1f}), 90 % CI [{diff - half:+.2f}, {diff + half:+.2f}]"
    if word == UNDECIDED:
        needed = seeds_to_settle(a, b)
        text += (f"; this n detects only |diff| > {detectable(se, df):.2f} pp and shows a tie only within "
                 f"±{EQUIVALENCE_MARGIN_PP:g} pp; "
                 + (f"about {needed} seeds per group would settle it" if needed else
                    f"more than {MAX_SEEDS} seeds per group would be needed"))
    return Outcome(word, diff, se, df, p, diff - half, diff + half, text)
