"""rbo.ironing and scripts.plot_ironing (issue 11 §1): the authors' 1-D demo step by hand, the ablation's
switches, RBO as the ablation's end point, the claim's rule, the figure."""

from __future__ import annotations

import math
from dataclasses import fields

import numpy as np
import pytest

from rbo import ironing
from rbo.ironing import ABLATION, AUTHORS, RBO_CHOICES, SETTINGS, Variant, demo_trajectory, ironing_claim
from scripts.plot_ironing import plot_ironing

SMALL = {**SETTINGS, "steps": 30}
CHOICES = [f.name for f in fields(Variant)]


def series(theta: float, trig, power: int) -> float:
    return sum(trig(k * k * theta) / k**power for k in range(1, 101))


def hand_step(theta: float, radius: float, *, true_slope=False, graph_normal=False, warm_at_theta=False,
              lr=1e-3, gamma=0.05) -> tuple[float, tuple[float, float]]:
    """Two projection steps (K = 2) of the demo, written out from examples/weirstrass.py and
    rolling_ball_trajectory; each keyword switches one choice to RBO's. Returns (new θ, centre)."""
    def f(x):
        return series(x, math.sin, 2)

    def slope(x):
        return series(x, math.cos, 0 if true_slope else 2)

    g = slope(theta)
    norm = math.sqrt(1 + g * g)
    if graph_normal:  # point + ρ·(−g, 1)/√(1 + g²)
        centre = (theta - radius * g / norm, f(theta) + radius / norm)
    else:  # their normal = (1, −g)/√(1 + g²), centre = point − ρ·normal
        centre = (theta - radius / norm, f(theta) + radius * g / norm)
    target = (centre[0] - lr * g, centre[1] - lr * g * g)  # centre − lr·tangent, tangent = (g, |g|²)
    x0 = theta if warm_at_theta else centre[0]  # footpoint = center[0]
    x1 = x0 - gamma * ((x0 - target[0]) + slope(x0) * (f(x0) - target[1]))
    x2 = x1 - gamma * ((x1 - target[0]) + slope(x1) * (f(x1) - target[1]))
    return x2, centre


def test_authors_demo_first_step_equals_their_formulas_by_hand():
    radius = 0.1
    theta, centre = demo_trajectory(AUTHORS, [radius], **{**SETTINGS, "steps": 1, "proj_steps": 2})
    expected_theta, expected_centre = hand_step(2.0, radius)
    assert theta[0, 0] == 2.0
    assert theta[1, 0] == pytest.approx(expected_theta, rel=1e-13)
    assert centre[0, 0] == pytest.approx(expected_centre, rel=1e-13)
    assert abs(theta[1, 0] - hand_step(2.0, radius, true_slope=True)[0]) > 1e-3  # the slope matters here


@pytest.mark.parametrize("switched", CHOICES)
def test_each_switch_changes_one_choice_toward_rbo(switched):
    (name, (_, variant)), = [(n, lv) for n, lv in ABLATION.items()
                             if getattr(lv[1], switched) != getattr(AUTHORS, switched)]
    assert getattr(variant, switched) == getattr(RBO_CHOICES, switched)
    assert all(getattr(variant, c) == getattr(AUTHORS, c) for c in CHOICES if c != switched), name
    keyword = {"slope": "true_slope", "normal": "graph_normal", "warm_start": "warm_at_theta"}[switched]
    theta, centre = demo_trajectory(variant, [0.3], **{**SETTINGS, "steps": 1, "proj_steps": 2})
    expected_theta, expected_centre = hand_step(2.0, 0.3, **{keyword: True})
    assert theta[1, 0] == pytest.approx(expected_theta, rel=1e-12)
    assert centre[0, 0] == pytest.approx(expected_centre, rel=1e-12)


def test_all_three_switched_is_rbo_itself():
    """Where the projection is stable (γ·(1 + f′²) < 2), the demo with RBO's three choices follows rbo.RBO."""
    settings = {**SETTINGS, "steps": 10, "proj_steps": 5, "proj_lr": 1e-4, "lr": 0.05}
    radii = [0.05, 0.5]
    ours, ours_centre = demo_trajectory(RBO_CHOICES, radii, **settings)
    rbo, rbo_centre = ironing.rbo_trajectory(radii, **settings)
    assert np.abs(rbo[-1] - rbo[0]).min() > 5e-5  # it moved
    np.testing.assert_allclose(ours - ours[0], rbo - rbo[0], rtol=1e-9, atol=0)  # the displacements agree
    np.testing.assert_allclose(ours_centre, rbo_centre, rtol=1e-9, atol=0)


def test_variant_rejects_unknown_choices():
    with pytest.raises(ValueError, match="Variant.normal='upward' is unknown; allowed: authors, graph"):
        Variant(normal="upward")
    with pytest.raises(ValueError, match="unknown setting"):
        ironing.ironing_demo(step=3)


def fake_data(finals: dict[str, float]) -> dict:
    """ironing_demo()'s shape with every run ending at ``finals[name]`` (default: the start) on two radii."""
    start = SETTINGS["start"]
    runs = {name: {"label": name, "lr": 1e-3, "theta": np.array([[start, start], [finals.get(name, start)] * 2])}
            for name in [*ABLATION, "rbo", "authors_no_roll"]}
    return {"domain": ironing.DOMAIN, "radii": [0.1, 1.0], "settings": SETTINGS, "gd_final": 1.913, "runs": runs}


@pytest.mark.parametrize("finals, verdict", [
    ({"authors": 0.25, "rbo": 0.25}, "supported"),
    ({"authors": 0.25, "warm_start_theta": 0.25, "rbo": -3.0}, "not supported"),
    ({"authors": 1.95, "rbo": 1.95}, "inconclusive"),  # not past gradient descent's stall (1.913)
    ({"authors": -0.2, "rbo": 5.0}, "inconclusive"),  # outside the domain
    ({"authors": 2.095, "rbo": 2.095}, "inconclusive"),  # higher on f than the start
])
def test_claim_follows_the_rule(finals, verdict):
    claim = ironing_claim(fake_data(finals))
    assert set(claim) == {"verdict", "evidence", "rule"}
    assert claim["verdict"] == verdict
    assert claim["rule"] == ironing.IRONING_RULE and "warm start" not in claim["rule"]
    if verdict == "not supported":
        assert "Switching the slope or the normal alone stops the demo's ironing" in claim["evidence"]


def test_plot_writes_png_and_pdf(tmp_path):
    data = ironing.ironing_demo(radii=[0.1, 1.0], grid_points=300, steps=20)
    written = plot_ironing(data, tmp_path / "ironing")
    assert [p.name for p in written] == ["ironing.png", "ironing.pdf"]
    assert all(p.stat().st_size > 1000 for p in written)
    claim = ironing_claim(data)
    assert claim["verdict"] in ("supported", "not supported", "inconclusive") and claim["evidence"]
    del data["runs"]
    with pytest.raises(ValueError, match="lacks \\['runs'\\]"):
        plot_ironing(data, tmp_path / "bad")


@pytest.mark.slow
def test_the_authors_demo_irons_at_every_radius_at_their_settings():
    """The full figure (about half a minute): the demo reproduces the authors' picture (every ball ends in the
    domain, far left of the start); the verdict is one of the three."""
    data = ironing.ironing_demo()
    assert ironing.irons(data)["authors"].all()
    assert ironing_claim(data)["verdict"] in ("supported", "not supported", "inconclusive")
