"""scripts.plot: every figure is written as a non-empty PNG and PDF (matplotlib Agg)."""

from __future__ import annotations

import numpy as np
import pytest
from test_aggregate import RecordWarning, write_heatmap, write_table1_set

from scripts import plot
from scripts.aggregate import build


def fake_ironing() -> dict:
    """The shape assumed for rbo.ironing.ironing_demo()."""
    grid = np.linspace(0.0, 2.1, 400)
    k = np.arange(1, 101)[:, None]
    f = (np.sin(k**2 * grid) / k**2).sum(axis=0)
    radii = [0.01, 0.1, 0.5]
    rbo = {r: {"theta": np.linspace(1.0, 1.4, 20), "centre_theta": np.linspace(1.0, 1.4, 20),
               "centre_y": np.linspace(0.5, 0.2, 20) + r, "final": 1.4} for r in radii}
    return {"theta_grid": grid, "f": f, "radii": radii, "gd": {"theta": np.linspace(1.0, 1.1, 20)}, "rbo": rbo}


def assert_figures(stem):
    for suffix in ("png", "pdf"):
        path = stem.parent / f"{stem.name}.{suffix}"
        assert path.stat().st_size > 1000, path


def test_cli_writes_curves_cost_and_ironing(tmp_path, monkeypatch, capsys):
    runs, out = tmp_path / "runs", tmp_path / "results"
    write_table1_set(runs)
    monkeypatch.setattr(plot, "ironing_data", fake_ironing)
    with pytest.warns(RecordWarning):
        assert plot.main(["--runs", str(runs), "--out", str(out)]) == 0
    assert_figures(out / "paper/table1/figures/curves_mnist_mlp")
    assert_figures(out / "paper/table1/figures/cost_mnist_mlp")
    assert_figures(out / "paper/ironing/ironing")
    assert "wrote 6 figure files" in capsys.readouterr().out
    assert not list(out.rglob("*.tmp"))


def test_heatmap_figure(tmp_path):
    write_heatmap(tmp_path / "runs")
    agg = build(tmp_path / "runs")
    plot.plot_heatmap(agg.heatmaps[("paper/heatmap", "mnist", "mlp")], tmp_path / "heatmap", "ρ × η")
    assert_figures(tmp_path / "heatmap")


def test_ironing_needs_the_documented_keys(tmp_path):
    data = fake_ironing()
    del data["gd"]
    with pytest.raises(ValueError, match="gd"):
        plot.plot_ironing(data, tmp_path / "ironing")


def test_missing_ironing_demo_is_reported(tmp_path, monkeypatch, capsys):
    (tmp_path / "runs").mkdir()
    monkeypatch.setattr(plot, "ironing_data", lambda: None)
    plot.main(["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "results")])
    assert "ironing_demo() not available" in capsys.readouterr().out
