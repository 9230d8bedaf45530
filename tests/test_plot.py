"""scripts.figures and scripts.index: the figures as a paper prints them (issues 12, 25) and results/index.md.
Figures are inspected as matplotlib objects (artists, scales, legend boxes), never as pixels; the ironing figure is
tested in tests/test_ironing.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgb
from matplotlib.patches import Rectangle
from test_aggregate import (  # noqa: F401 (an autouse fixture)
    RBO_HYPER,
    RecordWarning,
    build,
    every_record_launched,
    run_results,
    write_heatmap,
    write_run,
    write_table1_set,
)

from scripts import figures as plot
from scripts import index as index_module
from scripts import tables
from scripts.frame import block_title


def block(agg, experiment, dataset="mnist", model="mlp"):
    """The groups of one (experiment, dataset, model), as plot_all passes them."""
    g = agg.groups
    return g[(g["experiment"] == experiment) & (g["dataset"] == dataset) & (g["model"] == model)]


def curves(agg, experiment, dataset="mnist"):
    return plot.curves_figure(agg, block(agg, experiment, dataset), block_title(experiment, dataset, "mlp"))


@pytest.fixture
def table1(tmp_path):
    """sgd and rbo × 3 seeds, entropy_sgd diverged after 3 of 10 epochs, sam 1 completed + 1 failed."""
    write_table1_set(tmp_path / "runs")
    with pytest.warns(RecordWarning):
        return build(tmp_path / "runs", experiments=["paper/table1"])


def two_seeds(root, experiment="quick/two", dataset="mnist_subset", epochs=2, rbo_loss=0.5):
    """sgd (final accuracy 90 and 94 %) and rbo over two seeds, plus rbo_radius0, on ``dataset``."""
    for seed, acc in enumerate((0.90, 0.94)):
        write_run(root, experiment=experiment, optimizer="sgd", dataset=dataset, seed=seed, epochs=epochs,
                  final_acc=acc, final_loss=0.5)
        write_run(root, experiment=experiment, optimizer="rbo", dataset=dataset, seed=seed, epochs=epochs,
                  final_acc=0.95, final_loss=rbo_loss, hyper=RBO_HYPER, evals_per_step=100)
    write_run(root, experiment=experiment, optimizer="rbo_radius0", dataset=dataset, epochs=epochs,
              final_acc=0.93, final_loss=0.5, hyper={**RBO_HYPER, "radius": 0.0}, evals_per_step=100)
    return build(root, experiments=[experiment])


def test_readable_names_and_control_styles(table1, tmp_path):
    labels = [t.get_text() for t in curves(table1, "paper/table1").legends[0].get_texts()]
    assert labels[:4] == ["RBO [n = 3]", "SGD [n = 3]", "Entropy-SGD [1 diverged]", "SAM [n = 1, 1 failed]"]
    styles = plot.series_styles(two_seeds(tmp_path / "two").groups)
    by_label = {s["label"]: s for s in styles.values()}
    control, baseline = by_label["RBO (ρ = 0)"], by_label["SGD"]
    assert control["role"] == "control" and control["line"]["linestyle"] != "-"
    red, green, blue = to_rgb(control["line"]["color"])
    assert red == green == blue  # grey
    assert baseline["line"]["linestyle"] == "-" and baseline["line"]["color"] != control["line"]["color"]
    assert plot.setting_text("lr=1, radius=2") == "η = 1, ρ = 2"
    assert plot.setting_text("lr=0.13, reference=rbo_radius0") == "η = 0.13, measured on RBO (ρ = 0)"


def test_diverged_run_is_marked_where_it_stopped(table1):
    fig = curves(table1, "paper/table1")
    loss, acc = fig.axes[0], fig.axes[1]
    for ax, expected in ((loss, 2.0 * 0.25 ** 0.3), (acc, 100 * (0.1 + 0.8 * 0.3))):  # write_run's curves at epoch 3
        marks = [line for line in ax.lines if line.get_gid() == plot.DIVERGED]
        assert len(marks) == 1 and marks[0].get_marker() == "x"
        assert marks[0].get_xdata()[0] == 3.0 and marks[0].get_ydata()[0] == pytest.approx(expected)
    assert "diverged run: where it stopped" in [t.get_text() for t in fig.legends[0].get_texts()]


def test_run_diverged_in_its_first_epoch_is_marked_at_the_top_edge_and_failed_ones_named(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, experiment="quick/early", optimizer="sgd", epochs=2)
    write_run(runs, experiment="quick/early", optimizer="sam", epochs=2, status="failed")
    folder = write_run(runs, experiment="quick/early", optimizer="rbo", epochs=2, hyper=RBO_HYPER,
                       status="diverged", diverged_at=0)
    summary = json.loads((folder / "summary.json").read_text())
    (folder / "summary.json").write_text(json.dumps({**summary, "diverged_at_epoch": 0.4}))
    fig = curves(build(runs, experiments=["quick/early"]), "quick/early")
    marks = [line for line in fig.axes[0].lines if line.get_gid() == plot.DIVERGED]
    assert len(marks) == 1 and marks[0].get_xdata()[0] == 0.4 and marks[0].get_ydata()[0] == 1.0  # axes top
    assert len([line for line in fig.axes[1].lines if line.get_gid() == plot.DIVERGED]) == 1  # its init point
    assert "not drawn: SAM (failed)" in [t.get_text() for t in fig.legends[0].get_texts()]


def test_one_legend_outside_every_axes(table1):
    fig = curves(table1, "paper/table1")
    FigureCanvasAgg(fig).draw()  # the constrained layout places the legend
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in fig.axes)
    box = fig.legends[0].get_window_extent()
    for ax in fig.axes:
        assert not box.overlaps(ax.get_tightbbox()), ax


def test_two_seeds_get_a_min_max_band_not_std(tmp_path):
    agg = two_seeds(tmp_path / "runs")
    fig = curves(agg, "quick/two", "mnist_subset")
    acc = fig.axes[1]
    bands = [c for c in acc.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2  # sgd and rbo have two seeds; rbo_radius0 one: no band
    sgd_band = np.concatenate([p.vertices for p in bands[0].get_paths()])
    final = sgd_band[np.isclose(sgd_band[:, 0], 2.0), 1]
    assert final.min() == pytest.approx(90.0) and final.max() == pytest.approx(94.0)  # ± std: 89.17, 94.83
    assert "mean, min–max over" in fig.get_suptitle() and "std" not in fig.get_suptitle()
    assert "n = 1" in " ".join(t.get_text() for t in fig.legends[0].get_texts())


def test_one_seed_is_labelled_as_one_seed(tmp_path):
    runs = tmp_path / "runs"
    for optimizer in ("sgd", "sam"):
        write_run(runs, experiment="quick/one", optimizer=optimizer, epochs=1, dataset="fashion_mnist")
    fig = curves(build(runs, experiments=["quick/one"]), "quick/one", "fashion_mnist")
    assert "one seed per curve (n = 1)" in fig.get_suptitle() and "real data" in fig.get_suptitle()
    assert not [c for ax in fig.axes for c in ax.collections if isinstance(c, PolyCollection)]


def test_scale_label_in_titles():
    assert "CPU-scale" in block_title("quick/table1", "mnist_subset", "mlp")
    assert "real data" in block_title("fashion/table1", "fashion_mnist", "mlp")
    assert "not evidence" in block_title("quick/x", "synthetic", "mlp")
    assert block_title("paper/table1", "mnist", "mlp") == "paper/table1: MNIST / MLP"


def test_log_axes_only_where_the_data_span_decades(table1, tmp_path):
    fig = curves(table1, "paper/table1")  # loss 2 → 0.02 (SAM), evaluations 10 → 10,000
    (loss, acc), (loss_e, acc_e) = np.reshape(fig.axes, (2, 2))
    assert loss.get_yscale() == "log" and acc.get_yscale() == "linear" and loss.get_xscale() == "linear"
    assert loss_e.get_xscale() == "log" and acc_e.get_xscale() == "log"
    narrow = curves(two_seeds(tmp_path / "narrow", epochs=5), "quick/two", "mnist_subset")  # loss 2 → 0.5
    assert narrow.axes[0].get_yscale() == "linear"
    assert plot.log_scale_fits([1, 10]) and not plot.log_scale_fits([1, 9.9]) and not plot.log_scale_fits([0, 10])


@pytest.mark.parametrize("epochs", [1, 10])
def test_whole_epoch_ticks_and_the_same_epoch_axis_for_loss_and_accuracy(tmp_path, epochs):
    agg = two_seeds(tmp_path / "runs", epochs=epochs)
    fig = curves(agg, "quick/two", "mnist_subset")
    loss, acc = fig.axes[:2]
    assert loss.get_xlim() == acc.get_xlim() and loss.get_xlim()[0] < 0 < epochs < loss.get_xlim()[1]
    for ax in (loss, acc):
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert ticks and all(float(t).is_integer() for t in ticks)


def test_panels_against_evaluations_only_when_they_say_something(table1, tmp_path):
    assert len(curves(table1, "paper/table1").axes) == 4  # 10 evaluations per curve, 1 / 2 / 100 per step
    assert len(curves(two_seeds(tmp_path / "short", epochs=3), "quick/two", "mnist_subset").axes) == 2  # 3 points
    write_heatmap(tmp_path / "grid")
    grid = build(tmp_path / "grid", experiments=["paper/heatmap"])
    assert len(curves(grid, "paper/heatmap").axes) == 2  # every group spends 100 per step


def test_cost_bars_only_when_optimizers_differ(table1, tmp_path):
    fig = plot.cost_figure(table1.groups, "t")
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["SGD", "SAM", "RBO"]  # completed groups only, readable names
    write_heatmap(tmp_path / "grid")
    assert plot.cost_figure(build(tmp_path / "grid", experiments=["paper/heatmap"]).groups, "t") is None


def test_a_figure_the_records_no_longer_give_is_removed_not_left_stale(tmp_path):
    """Cost bars from an earlier run stay on disk after the records stop giving them (here every group spends the
    same evaluations per step): plot_all deletes them and says so; a figure it draws again is rewritten."""
    write_heatmap(tmp_path / "grid")
    figures = tmp_path / "results" / "paper" / "heatmap" / "figures"
    figures.mkdir(parents=True)
    for suffix in (".png", ".pdf"):
        (figures / f"cost_mnist_mlp{suffix}").write_text("stale")
        (figures / f"curves_mnist_mlp{suffix}").write_text("stale")
    written, notes = plot.draw_figures(build(tmp_path / "grid", experiments=["paper/heatmap"]), tmp_path / "results")
    assert not list(figures.glob("cost_*"))
    assert sum("removed" in n and "cost_mnist_mlp" in n for n in notes) == 2
    assert figures / "curves_mnist_mlp.png" in written and (figures / "curves_mnist_mlp.png").read_bytes() != b"stale"


def test_heatmap_labels_annotates_cells_and_marks_diverged(tmp_path):
    write_heatmap(tmp_path / "runs")
    agg = build(tmp_path / "runs", experiments=["paper/heatmap"])
    fig = plot.heatmap_figure(agg.heatmaps[("paper/heatmap", "mnist", "mlp")], "ρ × η")
    acc = fig.axes[0]
    assert acc.get_xlabel() == "learning rate η" and acc.get_ylabel() == "radius ρ"
    assert [t.get_text() for t in acc.get_xticklabels()] == ["1", "10"]
    marked = [p for p in acc.patches if isinstance(p, Rectangle) and p.get_gid() == plot.DIVERGED]
    assert len(marked) == 1 and marked[0].get_xy() == (0.5, 0.5) and marked[0].get_hatch()  # ρ = 2, η = 10
    texts = {(t.get_position(), t.get_text()) for t in acc.texts}
    assert texts == {((0, 0), "91.1"), ((1, 0), "92.0"), ((0, 1), "92.1"), ((1, 1), "diverged")}
    grid = agg.heatmaps[("paper/heatmap", "mnist", "mlp")]
    gap = plot.heatmap_figure(grid[~((grid["radius"] == 1.0) & (grid["lr"] == 1.0))], "ρ × η").axes[0]
    assert ((0, 0), "no run") in {(t.get_position(), t.get_text()) for t in gap.texts}


def test_cli_writes_figures_ironing_and_index(tmp_path, monkeypatch, capsys):
    runs, out = tmp_path / "runs", tmp_path / "results"
    write_table1_set(runs)
    record = tmp_path / "no-evidence/paper/ironing/record.json"  # the 1-D record where the evidence lives
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"fake": True}))
    calls = []
    import scripts.plot_ironing

    monkeypatch.setattr(scripts.plot_ironing, "draw_ironing", lambda data, folder: calls.append((data, folder)) or [])
    with pytest.warns(RecordWarning):
        assert run_results("figures", "--runs", str(runs), "--out", str(out), root=tmp_path) == 0
    for stem in ("curves_mnist_mlp", "cost_mnist_mlp"):
        for suffix in ("png", "pdf"):
            assert (out / f"paper/table1/figures/{stem}.{suffix}").stat().st_size > 1000
    assert calls == [({"fake": True}, out / "paper/ironing")]
    assert "wrote 5 files" in capsys.readouterr().out  # 4 figure files and the index
    text = (out / "index.md").read_text()
    assert "(paper/table1/figures/curves_mnist_mlp.pdf)" in text and "skipped 2 unreadable" in text
    assert not list(out.rglob("*.tmp"))


def test_a_missing_ironing_record_is_reported(tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    run_results("figures", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "results"), root=tmp_path)
    assert "ironing: no 1-D record" in capsys.readouterr().out


def test_index_lists_every_table_figure_and_claims(tmp_path):
    out = tmp_path / "results"
    files = ["claims.md", "README.md", "runs.csv", "paper/table1.csv", "paper/ironing/ironing.png",
             "paper/ironing/ironing.pdf", "quick/table1/table.md", "quick/table1/table.csv", "quick/table1/table.tex",
             "quick/table1/equal_compute.md", "quick/heatmap/heatmap_mnist_subset_mlp.md",
             "quick/table1/figures/curves_mnist_subset_mlp.png", "quick/table1/figures/curves_mnist_subset_mlp.pdf",
             "fashion/table1/figures/cost_fashion_mnist_mlp.png", "quick/heatmap/figures/heatmap_mnist_subset_mlp.png",
             "extra/unknown.png"]
    for name in files + ["index.md"]:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("x")
    (out / "records/quick/table1/abc/summary.json").parent.mkdir(parents=True)  # committed evidence: not listed
    (out / "records/quick/table1/abc/summary.json").write_text("{}")
    index = index_module.write_index(out, "read 3 run records").read_text()
    assert all(f"({name})" in index for name in files), [n for n in files if f"({n})" not in index]
    assert "(index.md)" not in index and "read 3 run records" in index and "records/quick" not in index
    lines = {line.split("`")[1]: line for line in index.splitlines() if line.startswith("- ")}
    assert len(lines) == 12  # one line per table or figure, its formats linked on it
    sections = index.split("## ")
    assert "claims against our runs" in next(s for s in sections if s.startswith("Claims"))
    figures = next(s for s in sections if s.startswith("Figures"))
    assert all(f in figures for f in files if f.endswith(".png"))
    assert "CPU-scale" in lines["quick/table1/figures/curves_mnist_subset_mlp.png"]
    assert "real data" in lines["fashion/table1/figures/cost_fashion_mnist_mlp.png"]
    assert "ρ × η" in lines["quick/heatmap/heatmap_mnist_subset_mlp.md"]


def test_accuracy_stays_linear_across_a_decade_and_settings_keep_their_optimizers_colour(tmp_path):
    """Accuracy from 10 % to 100 % spans a decade but is read in points; two loss scales of SGD and of RBO are
    shades of SGD's and RBO's colours, never one palette shared across optimizers."""
    runs = tmp_path / "runs"
    for optimizer in ("sgd", "rbo"):
        for scale in (1, 10):
            write_run(runs, experiment="quick/scale", optimizer=optimizer, epochs=3, dataset="mnist_subset",
                      final_acc=1.0, config={"loss_scale": scale})
    fig = curves(build(runs, experiments=["quick/scale"]), "quick/scale", "mnist_subset")
    assert fig.axes[1].get_yscale() == "linear"
    colours = {t.get_text(): h.get_color() for t, h in zip(fig.legends[0].get_texts(), fig.legends[0].legend_handles)}
    sgd = {c for label, c in colours.items() if label.startswith("SGD")}
    rbo = {c for label, c in colours.items() if label.startswith("RBO")}
    assert len(sgd) == 2 and len(rbo) == 2 and not sgd & rbo


def test_every_optimizer_of_the_suite_has_a_readable_name_and_style():
    """Names and colours come from the registry (conf/optimizer/*.yaml), one entry per file, none from a list here."""
    from experiments.registry import option_names

    assert set(option_names()) - {"custom"} == set(plot.STYLES)
    assert plot.STYLES["rbo_newton"].label == "RBO (Newton projection)" and plot.STYLES["rbo_newton"].role == "RBO"
    assert plot.STYLES["rbo_radius0"].role == "control" and plot.STYLES["rbo_radius0"].linestyle != "-"
    assert len({s.color for s in plot.STYLES.values()}) == len(plot.STYLES)


def test_rbo_is_drawn_above_its_controls_and_coinciding_curves_are_named(tmp_path):
    """Issue 25: SGD and SAM on exactly the same curve (identical records) are named in the legend; RBO's line is on
    top of the grey controls."""
    runs = tmp_path / "runs"
    for seed in range(2):
        for optimizer in ("sgd", "sam"):
            write_run(runs, experiment="quick/same", optimizer=optimizer, dataset="mnist_subset", seed=seed,
                      final_acc=0.8, final_loss=0.5, evals_per_step=1 if optimizer == "sgd" else 2)
        write_run(runs, experiment="quick/same", optimizer="rbo", dataset="mnist_subset", seed=seed, final_acc=0.9,
                  hyper=RBO_HYPER, evals_per_step=100)
        write_run(runs, experiment="quick/same", optimizer="rbo_radius0", dataset="mnist_subset", seed=seed,
                  final_acc=0.85, hyper={**RBO_HYPER, "radius": 0.0}, evals_per_step=100)
    fig = curves(build(runs, experiments=["quick/same"]), "quick/same", "mnist_subset")
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any(label.startswith("SAM") and "on top of SGD" in label for label in labels), labels
    assert labels[0] == "RBO"
    lines = {line.get_label(): line.get_zorder() for line in fig.axes[0].lines if not line.get_label().startswith("_")}
    drawn = [line for line in fig.axes[0].lines if line.get_color() in ("tab:red", "0.15")]
    rbo = max(line.get_zorder() for line in drawn if line.get_color() == "tab:red")
    control = max(line.get_zorder() for line in drawn if line.get_color() == "0.15")
    assert rbo > control, lines


def test_cost_bars_count_evaluations_never_seconds(table1):
    fig = plot.cost_figure(table1.groups, "t")
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert labels == ["gradient evaluations / step", "gradient evaluations / run"]
    assert "second" not in fig._suptitle.get_text()


def test_equal_compute_marks_a_group_without_a_step_and_captions_name_existing_columns(tmp_path):
    for seed in range(3):
        write_run(tmp_path, optimizer="sgd", seed=seed, epochs=2, final_acc=0.5)
        write_run(tmp_path, optimizer="rbo", seed=seed, epochs=2, final_acc=0.8, hyper=RBO_HYPER, evals_per_step=100)
    tables.write_tables(build(tmp_path), tmp_path / "out")
    text = (tmp_path / "out/paper/table1/equal_compute.md").read_text()
    assert "(no step within the budget: the untrained model)" in text
    write_heatmap(tmp_path / "grid")
    tables.write_tables(build(tmp_path / "grid"), tmp_path / "grid_out")
    caption = (tmp_path / "grid_out/paper/heatmap/heatmap_mnist_mlp.md").read_text().split("\n|")[0]
    assert "diff pp" not in caption
