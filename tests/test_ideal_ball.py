"""rbo.ideal_ball (issue 21, SPEC "The ideal ball"): the exact envelope u_ρ and contact point against brute force and
closed forms, the global projection, the two ideal dynamics, and the grid the record uses (halved, nothing moves)."""

from __future__ import annotations

import numpy as np
import pytest

from rbo import ideal_ball
from rbo.ideal_ball import Landscape, envelope, envelope_slope, roll_envelope, roll_exact_projection
from rbo.ironing import GRID_POINTS, RADII, wrinkled_landscape

POINTS = 16 * 4096


def wavy(lo=-4.0, hi=4.0, points=POINTS) -> Landscape:
    """A bounded wrinkly test function with closed-form derivatives, on a non-periodic grid."""
    return Landscape.sampled(lambda x: 0.3 * np.sin(3 * x) + 0.05 * np.sin(40 * x) + 0.1 * x,
                             lambda x: 0.9 * np.cos(3 * x) + 2.0 * np.cos(40 * x) + 0.1,
                             lambda x: -2.7 * np.sin(3 * x) - 80.0 * np.sin(40 * x), lo, hi, points)


def brute_contact(land: Landscape, centre: float, radius: float) -> tuple[float, int]:
    """max over every grid point within ρ of c of f(x) + √(ρ² − (x − c)²): the definition, written out."""
    index = np.arange(land.size)
    x = land.x(index)
    inside = np.abs(x - centre) <= radius
    height = land.f[inside] + np.sqrt(radius**2 - (x[inside] - centre) ** 2)
    return float(height.max()), int(index[inside][height.argmax()])


def brute_closest(land: Landscape, theta: float, height: float) -> int:
    return int(np.argmin((land.x(np.arange(land.size)) - theta) ** 2 + (land.f - height) ** 2))


@pytest.mark.parametrize("radius", [0.003, 0.05, 0.4, 1.5])
def test_contact_is_the_dilation_by_a_disc(radius):
    """u_ρ and x* equal the brute-force maximum over the whole window, at centres all over the grid."""
    land = wavy()
    centres = np.linspace(-2.0, 2.0, 23)
    height, index = land.contact(centres, radius)
    for c, u, i in zip(centres, height, index):
        expected_u, expected_i = brute_contact(land, c, radius)
        assert u == expected_u and i == expected_i
        assert u >= land.at(land.index(c)) + radius * (1 - 1e-12)  # the ball rests above f at least ρ over its foot


def test_envelope_of_a_line_and_of_a_constant_in_closed_form():
    """f = a·x: u_ρ(c) = a·c + ρ√(1 + a²), touching at x* = c + ρa/√(1 + a²); f = 0: u_ρ = ρ, touching below c."""
    grid = np.linspace(-3.0, 3.0, 40 * 4096 + 1)
    a, radius = 0.75, 0.8
    centres = np.array([-1.0, 0.0, 0.3, 1.7])
    u = envelope(a * grid, grid, radius, centres)
    np.testing.assert_allclose(u, a * centres + radius * np.sqrt(1 + a * a), rtol=0, atol=1e-9)
    line = Landscape.sampled(lambda x: a * x, lambda x: a + 0 * x, lambda x: 0 * x, -3.0, 3.0, 40 * 4096)
    _, index = line.contact(centres, radius)
    np.testing.assert_allclose(line.x(index), centres + radius * a / np.sqrt(1 + a * a), atol=line.step)
    np.testing.assert_allclose(envelope(np.zeros_like(grid), grid, radius, centres), radius, atol=1e-12)
    coarse = np.linspace(-3.0, 3.0, 601)  # default centres: the grid points whose whole window is on the grid
    inner = coarse[(coarse >= -3 + radius) & (coarse <= 3 - radius)]
    np.testing.assert_allclose(envelope(a * coarse, coarse, radius), a * inner + radius * np.sqrt(1 + a * a),
                               atol=1e-3)


def test_closest_is_the_global_closest_point_not_a_local_one():
    """A point above a flat stretch, with a tall narrow bump to its side nearer than the stretch below it: the flat
    point below is a stationary point of the distance (where a local solver from below stops); the answer is on
    the bump. Plus random points against brute force."""
    land = Landscape.sampled(lambda x: 0.95 * np.exp(-((x - 0.9) / 0.05) ** 2), lambda x: 0 * x, lambda x: 0 * x,
                             -2.0, 2.0, 8 * 4096)
    index = land.closest(0.0, 1.0)
    assert abs(land.x(index) - 0.9) < 0.06 and index == brute_closest(land, 0.0, 1.0)
    rng = np.random.default_rng(0)
    wavy_land = wavy()
    theta, height = rng.uniform(-1.5, 1.5, 25), rng.uniform(-1.0, 1.5, 25)
    found = wavy_land.closest(theta, height)
    assert found.tolist() == [brute_closest(wavy_land, t, y) for t, y in zip(theta, height)]


def test_periodic_grid_wraps_and_matches_the_series():
    land = Landscape.sine_series({1: 1.0, 9: 0.1}, 4 * 4096)
    x = land.x(np.arange(0, land.size, 97))
    np.testing.assert_allclose(land.f[::97], np.sin(x) + 0.1 * np.sin(9 * x), atol=1e-12)
    np.testing.assert_allclose(land.slope[::97], np.cos(x) + 0.9 * np.cos(9 * x), atol=1e-12)
    np.testing.assert_allclose(land.second[::97], -np.sin(x) - 8.1 * np.sin(9 * x), atol=1e-11)
    u_near_zero, _ = land.contact([0.01, 0.01 + 2 * np.pi], 0.5)  # one period apart: the same ball
    assert u_near_zero[0] == pytest.approx(u_near_zero[1], abs=1e-12)
    centres = np.array([1.0, 3.0, 4.7])  # ρ past half a period: still the maximum over every copy of every point
    u_big, _ = land.contact(centres, 50.0)
    x_all = land.x(np.arange(land.size))
    for c, u in zip(centres, u_big):
        copies = x_all + 2 * np.pi * np.rint((c - x_all) / (2 * np.pi))  # each point's copy nearest c
        assert u == pytest.approx((land.f + np.sqrt(2500 - (copies - c) ** 2)).max(), abs=1e-12)


def test_envelope_slope_is_the_derivative_of_u():
    """Danskin: u_ρ′(c) = (x* − c)/√(ρ² − (x* − c)²), checked by central differences where u_ρ is smooth."""
    land = Landscape.sampled(np.cos, lambda x: -np.sin(x), lambda x: -np.cos(x), -4.0, 4.0, 64 * 4096)
    radius, centres, delta = 0.5, np.array([-1.2, -0.4, 0.7, 1.3]), 1e-4
    _, index = land.contact(centres, radius)
    slope = envelope_slope(land, centres, index, radius)
    difference = (land.contact(centres + delta, radius)[0] - land.contact(centres - delta, radius)[0]) / (2 * delta)
    np.testing.assert_allclose(slope, difference, atol=1e-3)
    np.testing.assert_allclose(slope, -np.sin(land.x(index)), atol=1e-3)  # f′ at the contact point


def test_the_ideal_ball_descends_its_envelope():
    """(a) on cos θ from c = 2.5. ρ = 0.5 (the minimum's curvature 1 < 1/ρ): u_ρ falls at every step and the ball
    settles on the minimum. ρ = 2: the ball cannot touch the minimum; it ends resting on both sides of it, its centre
    at the kink of u_ρ above π, zigzagging there by about η·|u_ρ′|."""
    land = Landscape.sampled(np.cos, lambda x: -np.sin(x), lambda x: -np.cos(x), -1.0, 7.0, 32 * 4096)
    run = roll_envelope(land, 2.5, [0.5, 2.0], 0.05, 200)
    assert (np.diff(run["height"][:, 0]) <= 1e-9).all()  # the grid moves u_ρ by f″h²/8 ≈ 5e-10 here
    assert abs(run["contact"][-1, 0] - np.pi) < 1e-3
    assert run["height"][-1, 1] < run["height"][0, 1] - 0.5
    assert abs(run["centre"][-1, 1] - np.pi) < 0.05 and abs(run["contact"][-1, 1] - np.pi) > 1.0


def test_exact_projection_step_by_hand():
    """Two steps of (b) against SPEC §1 steps 1–3 written out and a brute-force closest point: the centre on the
    upward normal, the roll by −η(f′, f′²), the global foot; the next slope is Γ's at the foot."""
    land = wavy()
    radius, lr = 0.3, 0.05
    run = roll_exact_projection(land, 0.4, radius, lr, 2)
    u, i = brute_contact(land, 0.4, radius)
    assert run["theta"][0, 0] == land.x(i)
    np.testing.assert_allclose(run["centre"][0, 0], [0.4, u], atol=1e-9)  # the ball dropped above the start
    for t in range(2):
        theta, (cx, cy) = run["theta"][t, 0], run["centre"][t, 0]
        assert np.hypot(cx - theta, cy - land.at(land.index(theta))) == pytest.approx(radius, rel=1e-9)
        assert cy > land.at(land.index(theta))  # above the graph: the upward normal
        g = -(cx - theta) / (cy - land.at(land.index(theta)))
        target = (theta - (radius / np.sqrt(1 + g * g) + lr) * g, cy - lr * g * g)
        assert run["theta"][t + 1, 0] == land.x(brute_closest(land, *target))
    foot = run["theta"][1, 0]
    g_foot = -(run["centre"][1, 0, 0] - foot) / (run["centre"][1, 0, 1] - land.at(land.index(foot)))
    assert g_foot == pytest.approx(0.9 * np.cos(3 * foot) + 2.0 * np.cos(40 * foot) + 0.1, abs=0.02)


def test_exact_projection_on_a_line_is_gradient_descent():
    """SPEC §1: on affine f a converged projection gives θ − η·a for every ρ (to the grid: the feet are grid points,
    and the slope read through a grid foot is off by O(h))."""
    a = 0.7
    line = Landscape.sampled(lambda x: a * x, lambda x: a + 0 * x, lambda x: 0 * x, -5.0, 5.0, 256 * 4096)
    run = roll_exact_projection(line, 1.0, [0.01, 1.0, 3.0], 1e-2, 5)
    np.testing.assert_allclose(np.diff(run["theta"], axis=0), -1e-2 * a, atol=2 * line.step)


def test_no_contact_point_where_the_curvature_exceeds_one_over_rho():
    """Proposition 3 on cos θ (curvature 1 at its minimum π): a ball of radius 2 never touches near π, one of
    radius 0.5 does."""
    land = Landscape.sampled(np.cos, lambda x: -np.sin(x), lambda x: -np.cos(x), 0.0, 6.3, 16 * 4096)
    centres = np.linspace(np.pi - 1, np.pi + 1, 201)
    for radius, touches in ((2.0, False), (0.5, True)):
        _, index = land.contact(centres, radius)
        assert (np.abs(land.x(index) - np.pi).min() < 0.01) == touches
        assert ((land.curvature(index) > 1 / radius) == False).all()  # noqa: E712 (elementwise)


def test_bad_input_is_refused_before_any_work():
    land = wavy(points=4096)
    with pytest.raises(ValueError, match="radius=.* allowed: > the grid step"):
        land.contact(0.0, land.step / 2)
    with pytest.raises(ValueError, match="centre=3.9 needs f on .* but the grid covers \\[-4, 4\\]"):
        land.contact(3.9, 0.5)
    with pytest.raises(ValueError, match="steps=-1 is invalid"):
        roll_envelope(land, 0.0, 0.5, 1e-2, -1)
    with pytest.raises(ValueError, match="lr=-0.1 is invalid; allowed: finite and >= 0"):
        roll_exact_projection(land, 0.0, 0.5, -0.1, 3)
    with pytest.raises(ValueError, match="a multiple of 4096"):
        Landscape.sampled(np.sin, np.cos, np.sin, 0.0, 1.0, 1000)
    with pytest.raises(ValueError, match="grid must be uniform"):
        envelope([0.0, 1.0, 2.0], [0.0, 1.0, 3.0], 0.5)


def test_halving_the_grid_moves_nothing():
    """The record's grid (2^20 points per period) against one of half the step, on f = Σ sin(k²θ)/k² over the
    plotted domain at the authors' radii: u_ρ moves by less than 2e-5 and a contact point by more than 1e-4 at
    under 0.2 % of 1051 centres (those are ties between two wrinkle tops)."""
    centres = np.linspace(-0.2, 2.3, 1051)
    coarse, fine = wrinkled_landscape(GRID_POINTS), wrinkled_landscape(2 * GRID_POINTS)
    for radius in RADII:
        (u, i), (u_fine, i_fine) = coarse.contact(centres, radius), fine.contact(centres, radius)
        assert np.abs(u - u_fine).max() < 2e-5, radius
        assert np.mean(np.abs(coarse.x(i) - fine.x(i_fine)) > 1e-4) < 0.002, radius


def test_levels_nest():
    """Each block size of the branch and bound divides the one before it (the search splits blocks into children)."""
    assert ideal_ball.LEVELS[-1] == 1
    assert all(a % b == 0 for a, b in zip(ideal_ball.LEVELS, ideal_ball.LEVELS[1:]))
