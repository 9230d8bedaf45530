"""The ideal rolling ball in 1-D, with nothing approximated but the grid (SPEC "The ideal ball", issue 21).

A ball of radius ρ resting on the graph Γ = {(x, f(x))} from above has its centre at height

    u_ρ(c) = max_{|x − c| ≤ ρ} f(x) + √(ρ² − (x − c)²)        (Γ dilated by a disc)

and touches Γ at the maximiser x*(c), the contact point. By Danskin's theorem u_ρ′(c) = (x* − c)/√(ρ² − (x* − c)²):
the normal of Γ at x* passes through the centre, so this is also f′(x*). Two ideal dynamics follow:

(a) :func:`roll_envelope`: gradient descent of the centre on u_ρ, c ← c − η·u_ρ′(c) (the ball rolling down the
    envelope it rests on);
(b) :func:`roll_exact_projection`: RBO's update (SPEC §1 steps 1–3: centre (θ, f) + ρ·(−f′, 1)/s, rolled by
    −η·(f′, f′²)) whose step 4 is the *global* closest point of Γ to the rolled centre, not a local solver's.

Everything is exact on a uniform grid x_i = start + i·h (:class:`Landscape`; periodic landscapes wrap): the maximum
and the closest point are taken over every grid point of the window, by a branch and bound over blocks of
:data:`LEVELS` nested blocks (a block whose bound cannot beat a value already found is skipped, so the answer
is the brute-force one). Contact points and projections are grid points; a finer grid changes them by about h
(tests/test_ideal_ball.py halves the grid).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LEVELS = (4096, 256, 16, 1)  # grid points per block of the branch and bound, coarse to fine


@dataclass(frozen=True)
class Landscape:
    """f, f′ and f″ on the uniform grid x_i = ``start`` + i·``step``, i < n. ``periodic``: f(x + n·step) = f(x), and
    indices wrap (the grid is one period, its end point left out)."""

    start: float
    step: float
    f: np.ndarray
    slope: np.ndarray
    second: np.ndarray
    periodic: bool = False
    _levels: list = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        n = len(self.f)
        if not (len(self.slope) == len(self.second) == n) or n % LEVELS[0]:
            raise ValueError(f"Landscape: f, slope and second need one common length, a multiple of {LEVELS[0]}; "
                             f"got {len(self.f)}, {len(self.slope)}, {len(self.second)}")
        if not self.step > 0:
            raise ValueError(f"Landscape.step={self.step!r} must be > 0")
        levels = []  # per block size: the highest value of each block, its offset, the lowest, its offset
        for size in LEVELS:
            by_block = np.asarray(self.f, dtype=float).reshape(-1, size)
            rows, argmax, argmin = np.arange(len(by_block)), by_block.argmax(1), by_block.argmin(1)
            levels.append((by_block[rows, argmax], argmax, by_block[rows, argmin], argmin))
        object.__setattr__(self, "_levels", levels)

    @classmethod
    def sampled(cls, f, slope, second, lo: float, hi: float, points: int) -> Landscape:
        """Callables f, f′, f″ on ``points`` grid points from ``lo`` with step (hi − lo)/(points − 1)."""
        x = np.linspace(lo, hi, points)
        return cls(lo, (hi - lo) / (points - 1), f(x), slope(x), second(x))

    @classmethod
    def sine_series(cls, coefficients: dict[int, float], points: int) -> Landscape:
        """f(θ) = Σ_m b_m·sin(m·θ) (integer m) on ``points`` grid points of [0, 2π), periodic, exactly (by FFT)."""
        if points % 2 or max(coefficients) >= points // 2:
            raise ValueError(f"Landscape.sine_series: points={points} must be even and above twice the highest "
                             f"frequency {max(coefficients)}")
        spectrum = np.zeros(points // 2 + 1, dtype=complex)
        for m, b in coefficients.items():
            spectrum[m] = b
        m = np.arange(points // 2 + 1)

        def series(weights):  # Σ_m Re(weights_m·e^{imθ}) on the grid
            return np.fft.irfft(weights * points / 2, n=points)

        return cls(0.0, 2 * np.pi / points, series(-1j * spectrum), series(m * spectrum), series(1j * m**2 * spectrum),
                   periodic=True)

    @property
    def size(self) -> int:
        return len(self.f)

    def x(self, index) -> np.ndarray:
        """The abscissa of (unwrapped) grid indices."""
        return self.start + np.asarray(index) * self.step

    def index(self, x) -> np.ndarray:
        """The nearest grid index to each x (unwrapped); outside a non-periodic grid is refused."""
        index = np.rint((np.asarray(x, dtype=float) - self.start) / self.step).astype(np.int64)
        self._require_inside(index, index, "x", x)
        return index

    def at(self, index, values: np.ndarray | None = None) -> np.ndarray:
        """``values`` (default f) at unwrapped grid indices."""
        values = self.f if values is None else values
        return values[np.asarray(index) % self.size]

    def curvature(self, index) -> np.ndarray:
        """Signed curvature κ = f″/(1 + f′²)^{3/2} of Γ at grid indices (> 0 in valleys)."""
        return self.at(index, self.second) / (1 + self.at(index, self.slope) ** 2) ** 1.5

    def _half_width(self, reach) -> np.ndarray:
        """Half-width of the window to search: ``reach``, at most half a period on a periodic grid (there the
        nearest copy of each point is the best one, for the disc and for the distance alike)."""
        return np.minimum(reach, self.size * self.step / 2) if self.periodic else np.asarray(reach, dtype=float)

    def _require_inside(self, lo, hi, what, value) -> None:
        outside = (np.asarray(lo) < 0) | (np.asarray(hi) >= self.size)
        if not self.periodic and outside.any():
            first = np.flatnonzero(outside)[0]
            raise ValueError(f"Landscape: {what}={np.ravel(value)[first]:.6g} needs f on "
                             f"[{self.x(np.ravel(lo)[first]):.6g}, {self.x(np.ravel(hi)[first]):.6g}], but the grid "
                             f"covers [{self.x(0):.6g}, {self.x(self.size - 1):.6g}]")

    def _window(self, centre, reach):
        """Inclusive index range [lo, hi] of the grid points within ``reach`` of ``centre`` (per query)."""
        half = self._half_width(reach)
        lo = np.ceil((centre - half - self.start) / self.step).astype(np.int64)
        return lo, np.floor((centre + half - self.start) / self.step).astype(np.int64)

    def _search(self, lo, hi, bound, score, best, best_index):
        """Branch and bound over nested blocks (:data:`LEVELS`) of each query's window [lo, hi] (one entry per query).

        ``bound(q, x_lo, x_hi, block_max, block_min)`` bounds ``score(q, x, f)`` from above over a block of query
        q; ``best`` is the score of the grid point ``best_index``, inside each window. At every level the highest
        and lowest point of each block raise a query's threshold, and only blocks whose bound reaches it are split
        into the next level's; at the last level (single points) the bound is the score. Returns (maximum score,
        its unwrapped grid index) per query: the maximum over every grid point of the window.
        """
        first, last = np.floor_divide(lo, LEVELS[0]), np.floor_divide(hi, LEVELS[0])
        span = first[:, None] + np.arange(int((last - first).max()) + 1)
        queries, column = np.nonzero(span <= last[:, None])
        blocks = span[queries, column]
        threshold = best.copy()
        for level, size in enumerate(LEVELS):
            maxima, argmax, minima, argmin = self._levels[level]
            wrapped = blocks % len(maxima)
            for offsets, values in ((argmax, maxima), (argmin, minima)):
                index = blocks * size + offsets[wrapped]
                inside = (index >= lo[queries]) & (index <= hi[queries])
                np.maximum.at(threshold, queries[inside], score(queries[inside], self.x(index[inside]),
                                                                values[wrapped][inside]))
            upper = bound(queries, self.x(blocks * size), self.x(blocks * size + size - 1), maxima[wrapped],
                          minima[wrapped])
            keep = upper >= threshold[queries]
            queries, blocks = queries[keep], blocks[keep]
            if level + 1 < len(LEVELS):
                ratio = size // LEVELS[level + 1]
                queries = np.repeat(queries, ratio)
                blocks = (blocks[:, None] * ratio + np.arange(ratio)).ravel()
        inside = (blocks >= lo[queries]) & (blocks <= hi[queries])
        queries, blocks = queries[inside], blocks[inside]
        values = score(queries, self.x(blocks), self.at(blocks))
        order = np.lexsort((-values, queries))  # each query's best point first
        head = order[np.r_[True, queries[order][1:] != queries[order][:-1]]]
        value, where = best.copy(), best_index.copy()
        better = values[head] > value[queries[head]]
        value[queries[head][better]], where[queries[head][better]] = values[head][better], blocks[head][better]
        return value, where

    def contact(self, centres, radius) -> tuple[np.ndarray, np.ndarray]:
        """u_ρ(c) and the contact point's unwrapped grid index for each centre c (``radius`` broadcasts)."""
        centres, radius = np.broadcast_arrays(np.asarray(centres, dtype=float), np.asarray(radius, dtype=float))
        shape, c, r = centres.shape, centres.ravel(), radius.ravel()
        _check("radius", r, r > self.step, f"> the grid step {self.step:.3g}")
        lo, hi = self._window(c, r)
        self._require_inside(lo, hi, "centre", c)
        nearest = np.clip(np.rint((c - self.start) / self.step).astype(np.int64), lo, hi)

        def cap(q, x):  # the disc's height above the contact level, √(ρ² − (x − c)²); −inf outside the disc
            d2 = r[q] ** 2 - (x - c[q]) ** 2
            with np.errstate(invalid="ignore"):
                return np.where(d2 >= 0, np.sqrt(np.maximum(d2, 0)), -np.inf)

        def bound(q, x_lo, x_hi, block_max, _):  # the block's highest f plus the disc at its point nearest c
            return block_max + cap(q, np.clip(c[q], x_lo, x_hi))

        def score(q, x, f):
            return f + cap(q, x)

        queries = np.arange(len(c))
        height, index = self._search(lo, hi, bound, score, score(queries, self.x(nearest), self.at(nearest)), nearest)
        return height.reshape(shape), index.reshape(shape)

    def closest(self, theta, height) -> np.ndarray:
        """Unwrapped grid index of the global closest point of Γ to each point (θ, height): the exact projection."""
        theta, height = np.broadcast_arrays(np.asarray(theta, dtype=float), np.asarray(height, dtype=float))
        shape, t, y = theta.shape, theta.ravel(), height.ravel()
        below = self.index(t)
        reach = np.hypot(self.x(below) - t, self.at(below) - y) + self.step  # the graph point below is this close
        lo, hi = self._window(t, reach)
        self._require_inside(lo, hi, "theta", t)

        def bound(q, x_lo, x_hi, block_max, block_min):  # −(squared distance to the block's bounding box)
            dx = np.maximum(0, np.maximum(x_lo - t[q], t[q] - x_hi))
            dy = np.maximum(0, np.maximum(block_min - y[q], y[q] - block_max))
            return -(dx * dx + dy * dy)

        def score(q, x, f):
            return -((x - t[q]) ** 2 + (f - y[q]) ** 2)

        best = score(np.arange(len(t)), self.x(below), self.at(below))
        return self._search(lo, hi, bound, score, best, below)[1].reshape(shape)


def envelope(f_values, grid, radius, centres=None) -> np.ndarray:
    """u_ρ(c) = max_{|x − c| ≤ ρ} f(x) + √(ρ² − (x − c)²) over the points of a uniform, non-periodic ``grid``, at
    ``centres`` (default: the grid points at least ρ from its ends, where the whole window is on the grid)."""
    grid = np.asarray(grid, dtype=float)
    step = (grid[-1] - grid[0]) / (len(grid) - 1)
    if not np.allclose(np.diff(grid), step, rtol=1e-9, atol=0):
        raise ValueError("envelope: grid must be uniform (equal steps)")
    padded = -(-len(grid) // LEVELS[0]) * LEVELS[0]  # whole blocks; the pad is −inf, never a maximiser
    values = np.full(padded, -np.inf)
    values[:len(grid)] = f_values
    land = Landscape(grid[0], step, values, np.zeros(padded), np.zeros(padded))
    if centres is None:
        centres = grid[(grid >= grid[0] + radius) & (grid <= grid[-1] - radius)]
    return land.contact(centres, radius)[0]


def envelope_slope(land: Landscape, centres, contact_index, radius) -> np.ndarray:
    """u_ρ′(c) = (x* − c)/√(ρ² − (x* − c)²) (Danskin): the gradient of the grid envelope, f′ at the contact."""
    offset = land.x(contact_index) - centres
    with np.errstate(divide="ignore", invalid="ignore"):
        return offset / np.sqrt(radius**2 - offset**2)


def _runs(start, radius, lr, steps: int, land: Landscape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``start``, ``radius`` and ``lr`` broadcast to one flat array per run, checked."""
    start, radius, lr = (a.ravel() for a in np.broadcast_arrays(*(np.asarray(v, dtype=float)
                                                                     for v in (start, radius, lr))))
    _check("steps", steps, isinstance(steps, int | np.integer) and steps >= 0, "an integer >= 0")
    _check("lr", lr, np.isfinite(lr) & (lr >= 0), "finite and >= 0")
    _check("radius", radius, radius > land.step, f"> the grid step {land.step:.3g}")
    _check("start", start, np.isfinite(start), "finite")
    return start, radius, lr


def _check(name: str, value, ok, allowed: str) -> None:
    if not np.all(ok):
        shown = np.ravel(value)[np.flatnonzero(~np.ravel(ok))[0]].item() if np.ndim(value) else value
        raise ValueError(f"{name}={shown!r} is invalid; allowed: {allowed}")


def roll_envelope(land: Landscape, start, radius, lr, steps: int) -> dict[str, np.ndarray]:
    """(a) Gradient descent of the centre on u_ρ from c₀ = ``start`` (the ball dropped onto Γ above ``start``):
    c ← c − η·u_ρ′(c). ``start``, ``radius`` and ``lr`` broadcast to one run per entry.

    Returns ``centre``, ``height`` (u_ρ(c)) and ``contact`` (x*), each of shape (steps + 1, runs).
    """
    centre, radius, lr = _runs(start, radius, lr, steps, land)
    out = {"centre": [], "height": [], "contact": []}
    for t in range(steps + 1):
        height, index = land.contact(centre, radius)
        for key, value in (("centre", centre), ("height", height), ("contact", land.x(index))):
            out[key].append(value)
        if t < steps:
            centre = centre - lr * envelope_slope(land, centre, index, radius)
            if not np.isfinite(centre).all():
                raise FloatingPointError(f"roll_envelope: a centre left the reals at step {t}")
    return {key: np.stack(value) for key, value in out.items()}


def _slope_at_foot(land: Landscape, index, across, up) -> np.ndarray:
    """Γ's slope at the grid foot ``index`` of a ball centred (``across``, ``up``) away from it: the normal line
    through the centre, (−f′, 1) ∝ (across, up) (exact for the continuous foot to O(h), where f′ at the grid point
    is off by |f″|·h); f′ at the grid point where the centre is level with the foot."""
    return np.divide(-across, up, out=land.at(index, land.slope).astype(float), where=up != 0)


def roll_exact_projection(land: Landscape, start, radius, lr, steps: int) -> dict[str, np.ndarray]:
    """(b) RBO's update (SPEC §1 steps 1–3) with the global closest point of Γ to the rolled centre as step 4,
    from the ball dropped onto Γ above ``start`` (as :func:`roll_envelope`: the first centre is (start, u_ρ(start)),
    the first foot its contact point). ``start``, ``radius`` and ``lr`` broadcast to one run per entry.

    The foot is a grid point and Γ's slope there comes from :func:`_slope_at_foot`: on a sharp wrinkle top the
    continuous foot moves less than a grid step per step, and a centre rebuilt from the grid point's f′ would
    never move. Returns ``theta`` (the feet) and ``centre`` ((θ-coordinate, height) of (θ, f) + ρ·(−f′, 1)/s),
    steps + 1 rows each.
    """
    start, radius, lr = _runs(start, radius, lr, steps, land)
    height, index = land.contact(start, radius)
    theta, f = land.x(index), land.at(index)
    g = _slope_at_foot(land, index, start - theta, height - f)
    thetas, centres = [], []
    for t in range(steps + 1):
        s = np.sqrt(1 + g * g)
        thetas.append(theta)
        centres.append(np.stack([theta - radius * g / s, f + radius / s], axis=-1))
        if t == steps:
            break
        target, height = theta - (radius / s + lr) * g, f + radius / s - lr * g * g
        index = land.closest(target, height)
        theta, f = land.x(index), land.at(index)
        g = _slope_at_foot(land, index, target - theta, height - f)
    return {"theta": np.stack(thetas), "centre": np.stack(centres)}
