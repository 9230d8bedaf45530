"""rbo.ironing, experiments.ironing and scripts.plot_ironing (issues 11 §1, 21): the authors' 1-D demo step by hand,
the ablation's switches, RBO as the ablation's end point, the rules, the record and its claim rows, the figures."""

from __future__ import annotations

import json
import math
from dataclasses import fields

import numpy as np
import pytest

from experiments import ironing as experiment
from experiments.records import write_json
from rbo import ironing
from rbo.ironing import ABLATION, AUTHORS, RBO_CHOICES, SETTINGS, Variant, demo_trajectory, ironing_claim
from scripts.plot_ironing import draw_ironing, plot_ironing

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
    rbo, rbo_centre, gap = ironing.rbo_trajectory(radii, **settings)
    assert gap.shape == (10, 2) and np.isfinite(gap).all()
    assert np.abs(rbo[-1] - rbo[0]).min() > 5e-5  # it moved
    np.testing.assert_allclose(ours - ours[0], rbo - rbo[0], rtol=1e-9, atol=0)  # the displacements agree
    np.testing.assert_allclose(ours_centre, rbo_centre, rtol=1e-9, atol=0)


def test_variant_rejects_unknown_choices():
    with pytest.raises(ValueError, match="Variant.normal='upward' is unknown; allowed: authors, graph"):
        Variant(normal="upward")
    with pytest.raises(ValueError, match="unknown setting"):
        ironing.ironing_demo(step=3)


def test_batched_demo_runs_equal_single_runs():
    """demo_trajectories runs every variant in one vectorised loop: the numbers are those of one run at a time."""
    runs = [(AUTHORS, 1e-3), (Variant(slope="true", warm_start="contact"), 2e-3), (AUTHORS, 0.0)]
    batch = ironing.demo_trajectories(runs, [0.05, 0.5], start=2.0, steps=15, proj_steps=4, proj_lr=0.05)
    for (variant, lr), (theta, centre) in zip(runs, batch):
        alone = demo_trajectory(variant, [0.05, 0.5], start=2.0, lr=lr, steps=15, proj_steps=4, proj_lr=0.05)
        np.testing.assert_array_equal(theta, alone[0])
        np.testing.assert_array_equal(centre, alone[1])


def test_gradient_descent_stall_is_how_far_it_ever_gets():
    """At the authors' η gradient descent wanders over a band of wrinkles: its reach is the farthest iterate, past
    its last one; a run ending between the two does not pass the stall."""
    path = ironing.gradient_descent_path(SETTINGS["start"], [SETTINGS["lr"]], SETTINGS["steps"])[:, 0]
    assert path[-1] == ironing.gradient_descent(SETTINGS["start"], SETTINGS["lr"], SETTINGS["steps"])
    reach = ironing.stall_reach(path, SETTINGS["start"])
    last = abs(path[-1] - SETTINGS["start"])
    assert reach == np.abs(path - SETTINGS["start"]).max() and reach > last + 0.05
    between = SETTINGS["start"] - (last + reach) / 2
    where = {"domain": ironing.DOMAIN, "start": SETTINGS["start"], "reach": reach}
    assert ironing.wrinkled(between) < ironing.wrinkled(SETTINGS["start"])  # lower on f, inside: only the reach
    assert not ironing.irons_at([between], **where)[0]
    assert ironing.irons_at([0.3], **where)[0]
    by_hand = [2.0]
    for _ in range(3):
        by_hand.append(by_hand[-1] - 0.5 * math.cos(by_hand[-1]))
    np.testing.assert_allclose(ironing.gradient_descent_path(2.0, [0.5], 3, np.cos)[:, 0], by_hand, rtol=1e-15)


def test_rbo_path_records_the_contact_diagnostics():
    run = ironing.rbo_path(np.cos, lambda x: -np.sin(x), 0.5, start=2.5, lr=0.1, steps=5, proj_steps=20, proj_lr=0.05,
                           measure=True)
    assert run["theta"].shape == (6,) and run["contact_gap"].shape == (5,) and np.isfinite(run["contact_gap"]).all()
    assert set(run) == {"theta", "contact_gap", "proj_residual", "centre_distance"}
    assert abs(run["theta"][-1] - np.pi) < abs(2.5 - np.pi)  # it rolls toward the minimum


def fake_data(finals: dict[str, float]) -> dict:
    """ironing_demo()'s shape with every run ending at ``finals[name]`` (default: the start) on two radii."""
    start = SETTINGS["start"]
    runs = {name: {"label": name, "lr": 1e-3, "theta": np.array([[start, start], [finals.get(name, start)] * 2])}
            for name in [*ABLATION, "rbo", "authors_no_roll"]}
    return {"domain": ironing.DOMAIN, "radii": [0.1, 1.0], "settings": SETTINGS, "gd_final": 1.913,
            "gd_reach": 0.154, "runs": runs}


@pytest.mark.parametrize("finals, verdict", [
    ({"authors": 0.25, "rbo": 0.25}, "supported"),
    ({"authors": 0.25, "warm_start_theta": 0.25, "rbo": -3.0}, "not supported"),
    ({"authors": 1.95, "rbo": 1.95}, "inconclusive"),  # not past gradient descent's stall (0.154 from the start)
    ({"authors": 1.88, "rbo": 1.88}, "inconclusive"),  # past its last iterate (1.913), not past its reach
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


# ---- experiments.ironing: the record, its claim rows, the figures --------------------------------------------

VERDICTS = ("supported", "not supported", "inconclusive")


@pytest.fixture(scope="module")
def small_record():
    """A record from the same code at a small scale (2 radii, 40 steps, a coarser grid, short theory runs), as
    written and read back (JSON)."""
    with pytest.MonkeyPatch.context() as patch:
        for table, changes in ((experiment.PROP2, {"radii": [0.01, 3.0], "rbo_radii": [0.1], "steps": 30}),
                               (experiment.PROP3, {"cos_steps": 30, "centres": 201}),
                               (experiment.LOCAL, {"radii": [0.1], "starts": 2}),
                               (experiment.LEMMA1, {"radii": [0.01, 1.0, 10.0, 100.0], "centres": 41})):
            for key, value in changes.items():
                patch.setitem(table, key, value)
        record = experiment.make_record(grid_points=2**18, steps=40, radii=[0.1, 1.0])
    return record


def test_record_round_trips_through_json(small_record, tmp_path):
    path = tmp_path / "record.json"
    write_json(path, small_record)
    read = json.loads(path.read_text())
    assert experiment.claim_rows(read) == experiment.claim_rows(small_record)
    assert read["settings"]["authors"]["steps"] == 40 and read["settings"]["radii"] == [0.1, 1.0]
    assert read["source_sha256"] and len(read["ideal"]["kept_steps"]) == 41
    theta = np.asarray(read["ablation"]["runs"]["authors"]["theta"], dtype=float)
    assert theta.shape == (41, 2) and theta[-1].tolist() == small_record["ablation"]["runs"]["authors"]["theta"][-1]


def test_claim_rows_give_verdicts_with_rules(small_record):
    rows = experiment.claim_rows(small_record)
    assert set(rows) == {"ironing", "lemma1", "prop2", "prop3", "local_vs_global"}
    for name in ("ironing", "lemma1", "prop2", "prop3"):
        assert set(rows[name]) == {"verdict", "evidence", "rule"} and rows[name]["verdict"] in VERDICTS, name
        assert rows[name]["evidence"] and rows[name]["rule"]
    assert set(rows["local_vs_global"]) == {"evidence"} and "Newton" in rows["local_vs_global"]["evidence"]
    assert "ideal ball (a) irons at" in rows["ironing"]["evidence"] and "rbo.RBO" in rows["ironing"]["evidence"]


def with_finals(record: dict, fine: float, coarse: float) -> dict:
    """``record`` with the ideal ball (a) ending at θ = ``coarse`` (the record's grid) and ``fine`` (half the step) at
    every radius and η."""
    changed = json.loads(json.dumps(record))
    runs, n = changed["ideal"]["envelope_descent"], len(record["settings"]["radii"])
    runs["final_contact"] = [[coarse] * n for _ in record["settings"]["lrs"]]
    changed["grid_check"]["envelope_descent"]["final_contact"] = [fine] * n
    return changed


@pytest.mark.parametrize("coarse, fine, verdict", [
    (0.3, 0.3, "supported"),  # inside, past the stall, lower on f: irons on both grids
    (1.99, 1.99, "not supported"),  # within gradient descent's reach of the start
    (0.3, 1.99, "inconclusive"),  # the grids disagree
    (-0.3, -0.3, "not supported"),  # left the domain
    (2.095, 2.095, "not supported"),  # higher on f than the start
])
def test_ironing_verdict_follows_the_ideal_ball(small_record, coarse, fine, verdict):
    row = experiment.ironing_row(with_finals(small_record, fine, coarse))
    assert row["verdict"] == verdict
    assert row["rule"].startswith(ironing.IRONS) and "ideal ball (a)" in row["rule"]


def test_theory_verdicts_follow_their_rules(small_record):
    record = json.loads(json.dumps(small_record))
    record["lemma1"]["oscillation"] = [1.0, 0.5, 0.2, 0.05]
    assert experiment.lemma1_row(record)["verdict"] == "supported"
    record["lemma1"]["oscillation"] = [1.0, 0.5, 0.06, 0.07]  # rises at the end
    assert experiment.lemma1_row(record)["verdict"] == "not supported"
    record["lemma1"]["oscillation"] = [1.0, 0.5, 0.3, 0.2]  # falls, but stays above 10 %
    assert experiment.lemma1_row(record)["verdict"] == "inconclusive"
    record["prop2"]["envelope_descent"] = [0.1, 0.97]
    assert experiment.prop2_row(record)["verdict"] == "supported"
    record["prop2"]["envelope_descent"] = [0.9, 0.3]
    assert experiment.prop2_row(record)["verdict"] == "not supported"
    record["prop2"]["rbo"] = [0.95]
    assert "it has the property" in experiment.prop2_row(record)["evidence"]
    assert experiment.prop3_row(record)["verdict"] == "supported"
    record["prop3"]["wrinkled"][0]["contacts_unreachable"] = 1
    assert experiment.prop3_row(record)["verdict"] == "not supported"


def test_draw_ironing_writes_the_three_figures(small_record, tmp_path):
    written = draw_ironing(json.loads(json.dumps(small_record, allow_nan=True)), tmp_path)
    assert sorted(p.name for p in written) == sorted(f"{stem}.{ext}" for stem in ("ironing", "ablation", "theory")
                                                      for ext in ("png", "pdf"))
    assert all(p.stat().st_size > 1000 for p in written)
    with pytest.raises(ValueError, match="the ironing record lacks \\['ideal'\\]"):
        draw_ironing({k: v for k, v in small_record.items() if k != "ideal"}, tmp_path)


def test_record_cli_refuses_a_folder(tmp_path):
    with pytest.raises(SystemExit, match="is a folder"):
        experiment.main(["--out", str(tmp_path)])


@pytest.mark.slow
def test_the_full_record(tmp_path):
    """The record at its real scale (about 35 s of CPU): written, under 1 MB, and every claim row gives a verdict."""
    experiment.main(["--out", str(tmp_path / "record.json")])
    assert (tmp_path / "record.json").stat().st_size < 1_000_000
    rows = experiment.claim_rows(json.loads((tmp_path / "record.json").read_text()))
    assert all(rows[name]["verdict"] in VERDICTS for name in ("ironing", "lemma1", "prop2", "prop3"))
