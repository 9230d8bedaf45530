"""The results pipeline's records, frame and tables steps (scripts.records, scripts.frame, scripts.tables,
scripts.results) on hand-written run records (README.md "Run records")."""

from __future__ import annotations

import hashlib
import json
import math

import pandas as pd
import pytest
import yaml

from scripts import results, tables
from scripts.evidence import experiment_files
from scripts.frame import build_frame
from scripts.records import RecordWarning, load_records

RBO_HYPER = {"lr": 1.0, "radius": 2.0, "proj_steps": 100, "proj_lr": 0.001, "projection": "gd", "proj_tol": None}
OUTPUT_ONLY = ("runs_dir", "data_dir", "logger", "progress", "log_every", "device")


@pytest.fixture(autouse=True)
def every_record_launched(monkeypatch):
    """Hand-written records are not what the sweeps launch (scripts.evidence.only_launched, tested on its own):
    here every experiment counts as one without sweep files, so every record is read."""
    monkeypatch.setattr(results, "launched", lambda names: {})


def build(root, experiments=None):
    """The frame of the records under ``root`` of ``experiments`` (default: the suite's)."""
    return build_frame(load_records(root).select(experiments or sorted(experiment_files())))


def run_results(*args: str, root=None) -> int:
    """``python -m scripts.results`` with no committed evidence (an empty folder)."""
    return results.main([*args, "--evidence", str(root / "no-evidence")])


def write_run(root, *, experiment="paper/table1", optimizer="sgd", dataset="mnist", model="mlp", seed=0,
              status="completed", epochs=10, final_acc=0.9, final_loss=0.5, hyper=None, evals_per_step=1,
              steps_per_epoch=10, seconds_per_epoch=2.0, budget_rows=(), diverged_at=None, hardware="test CPU",
              final_val=0.5, val_size=5000, config=None):
    """Write one run record exactly as the trainer does: config.yaml, metrics.csv, summary.json.

    Curves: test accuracy rises linearly from 0.1 to ``final_acc`` (validation accuracy from 0.1 to ``final_val``,
    NaN when ``val_size`` = 0), training loss falls geometrically from 2 to ``final_loss``. ``budget_rows`` =
    [(budget_sgd_epochs, test_acc), ...] evaluated at the first step whose cumulative gradient evaluations reach
    budget_sgd_epochs × steps_per_epoch (as the trainer does). A diverged run stops after ``diverged_at`` epochs; a
    failed one has no metrics beyond init. ``config``: top-level keys set on top (loss_scale, max_sgd_epochs...).
    """
    hyper = dict({"lr": 0.01} if hyper is None else hyper)
    config = {"experiment_name": experiment, "seed": seed, "device": "cpu", "precision": "fp32", "epochs": epochs,
              "batch_size": 256, "loss_scale": 1.0, "max_grad_evals": None, "max_sgd_epochs": None,
              "budget_sgd_epochs": [], "scheduler": "none", "log_every": 10, "runs_dir": str(root),
              "data_dir": "/data", "progress": False, "optimizer": {"name": optimizer, **hyper},
              "dataset": {"name": dataset, "val_size": val_size}, "model": {"name": model},
              "logger": {"name": "none"}, **(config or {})}
    val = (lambda e: 0.1 + (final_val - 0.1) * e / epochs) if val_size else (lambda e: math.nan)
    keyed = {k: v for k, v in config.items() if k not in OUTPUT_ONLY}
    run_id = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:12]
    folder = root / experiment / run_id
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))

    last = {"completed": epochs, "diverged": diverged_at or 0, "failed": 0, "running": 1}[status]
    rows = []
    for e in range(last + 1):
        rows.append({"epoch": float(e), "trigger": "epoch" if e else "init", "step": e * steps_per_epoch,
                     "grad_evals": e * steps_per_epoch * evals_per_step, "examples": e * steps_per_epoch * 256,
                     "train_seconds": e * seconds_per_epoch, "lr": hyper["lr"],
                     "train_loss": 2.0 * (final_loss / 2.0) ** (e / epochs) if e else math.nan,
                     "train_acc": final_acc * e / epochs if e else math.nan,
                     "val_loss": 1.0, "val_acc": val(e), "test_loss": 1.0,
                     "test_acc": 0.1 + (final_acc - 0.1) * e / epochs, "budget_sgd_epochs": math.nan,
                     "diag_grad_norm": 1.0})
    for k, acc in budget_rows:
        evals = k * steps_per_epoch
        step = math.ceil(evals / evals_per_step)
        rows.append({**rows[0], "epoch": step / steps_per_epoch, "trigger": "budget", "step": step,
                     "grad_evals": step * evals_per_step, "test_acc": acc, "budget_sgd_epochs": float(k)})
    pd.DataFrame(rows).sort_values(["grad_evals", "epoch"]).to_csv(folder / "metrics.csv", index=False)

    done = status == "completed"
    final = {"train_loss": final_loss, "train_acc": final_acc, "val_loss": 1.0,
             "val_acc": val(epochs) if val_size else None, "test_loss": 1.0, "test_acc": final_acc} if done else \
        dict.fromkeys(("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc"))  # NaN -> null
    grad_evals = last * steps_per_epoch * evals_per_step
    summary = {
        "run_id": run_id, "experiment": experiment, "status": status, "epochs": epochs, "epochs_completed": last,
        "optimizer": optimizer, "dataset": dataset, "model": model, "seed": seed,
        "hyper": {"name": optimizer, **hyper}, "final": final,
        "cost": {"grad_evals": grad_evals, "diag_evals": 0, "examples": last * steps_per_epoch * 256,
                 "train_seconds": last * seconds_per_epoch, "seconds_per_epoch": seconds_per_epoch,
                 "grad_evals_per_step": evals_per_step},
        "diagnostics": {"grad_norm": 1.0}, "error": "Traceback: boom" if status == "failed" else None,
        "diverged_at_epoch": diverged_at if status == "diverged" else None,
        "versions": {"python": "3.11", "torch": "2.14.1", "torchvision": "0.29.1", "rbo_bench": "0.1.0"},
        "git_commit": "abc", "device": "cpu", "hardware": hardware,
        "started_at": "2025-01-01T00:00:00", "finished_at": "2025-01-01T00:10:00",
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def write_table1_set(root, with_budget_rows=True):
    """sgd and rbo over 3 seeds, entropy_sgd diverged, sam with one completed and one failed seed, plus a corrupt
    and an incomplete record."""
    for seed, acc in enumerate((0.90, 0.92, 0.94)):
        write_run(root, optimizer="sgd", seed=seed, final_acc=acc, final_loss=0.5)
    for seed, acc in enumerate((0.97, 0.975, 0.98)):
        budget = [(10, 0.30 + 0.02 * seed)] if with_budget_rows else []
        write_run(root, optimizer="rbo", seed=seed, final_acc=acc, final_loss=0.05, hyper=RBO_HYPER,
                  evals_per_step=100, seconds_per_epoch=50.0, budget_rows=budget)
    write_run(root, optimizer="entropy_sgd", status="diverged", diverged_at=3)
    write_run(root, optimizer="sam", seed=0, final_acc=0.96, final_loss=0.02, evals_per_step=2)
    write_run(root, optimizer="sam", seed=1, status="failed", evals_per_step=2)
    corrupt = root / "paper/table1/corrupt0000"
    corrupt.mkdir(parents=True)
    (corrupt / "summary.json").write_text('{"status": "completed", "optimizer": ')
    incomplete = write_run(root, optimizer="sgd", seed=7, status="running")
    (incomplete / "metrics.csv").unlink()


@pytest.fixture
def table1(tmp_path):
    runs = tmp_path / "runs"
    write_table1_set(runs)
    with pytest.warns(RecordWarning):
        agg = build(runs)
    return agg


def row(frame, optimizer):
    rows = frame[frame["optimizer"] == optimizer]
    assert len(rows) == 1
    return rows.iloc[0]


def test_loader_skips_corrupt_and_incomplete_records(tmp_path):
    write_table1_set(tmp_path)
    with pytest.warns(RecordWarning, match="skipping"):
        records = load_records(tmp_path)
    assert len(records.runs) == 9
    reasons = sorted(reason for _, reason in records.skipped)
    assert len(reasons) == 2
    assert reasons[0].startswith("corrupt summary.json") and "running" in reasons[1]
    assert records.runs["status"].value_counts().to_dict() == {"completed": 7, "diverged": 1, "failed": 1}
    assert set(records.metrics.columns) >= {"run_id", "group", "trigger", "grad_evals", "test_acc"}
    assert "skipped 2 unreadable or incomplete" in records.describe()


@pytest.mark.parametrize("garbage, why", [(b"\x00\xffgarbage\nnot,a,table\n", "unreadable"), (b"a,b\n1,2\n", "lacks"),
                                          (b"epoch,trigger,grad_evals\nx,epoch,1\n", "numeric epoch")])
def test_damaged_metrics_are_loud_and_listed(tmp_path, garbage, why):
    """A garbage metrics.csv is a warning and a line of what was read, not silent NaN rows: the run's final
    metrics still count, its curves do not."""
    write_run(tmp_path, seed=0)
    folder = next(tmp_path.rglob("metrics.csv")).parent
    (folder / "metrics.csv").write_bytes(garbage)
    with pytest.warns(RecordWarning, match=why):
        records = load_records(tmp_path)
    assert len(records.runs) == 1 and len(records.metrics) == 0
    assert [path for path, _ in records.without_curves] == [str(folder)] and not records.damaged
    assert f"without curves {folder}" in records.describe()


def test_loader_rejects_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="runs_dir"):
        load_records(tmp_path / "nope")


def test_group_statistics_status_and_paper_column(table1):
    groups = table1.groups
    assert list(groups["optimizer"]) == ["sgd", "entropy_sgd", "sam", "rbo"]
    sgd = row(groups, "sgd")
    assert sgd["n"] == 3 and sgd["seeds"] == "0,1,2" and sgd["status"] == "completed"
    assert sgd["test_acc_mean"] == pytest.approx(92.0) and sgd["test_acc_std"] == pytest.approx(2.0)
    assert sgd["paper_test_acc"] == pytest.approx(91.77) and sgd["diff_test_acc"] == pytest.approx(0.23)
    assert sgd["grad_evals"] == 100 and sgd["seconds_per_epoch"] == 2.0
    rbo = row(groups, "rbo")
    assert rbo["test_acc_mean"] == pytest.approx(97.5) and rbo["test_acc_std"] == pytest.approx(0.5)
    assert rbo["diff_test_acc"] == pytest.approx(-0.01) and rbo["grad_evals_per_step"] == 100
    esgd = row(groups, "entropy_sgd")
    assert esgd["status"] == "diverged" and esgd["n"] == 0 and esgd["n_diverged"] == 1
    assert math.isnan(esgd["test_acc_mean"])
    sam = row(groups, "sam")
    assert sam["status"] == "1 completed, 1 failed" and sam["n"] == 1 and sam["n_failed"] == 1
    assert sam["test_acc_mean"] == pytest.approx(96.0) and math.isnan(sam["test_acc_std"])


def test_equal_compute_takes_the_last_evaluation_at_or_below_the_budget(tmp_path, table1):
    eq = table1.equal
    sgd, rbo = row(eq, "sgd"), row(eq, "rbo")
    assert sgd["sgd_budget"] == 100 and sgd["rbo_budget"] == 10_000
    assert sgd["acc_sgd_budget_mean"] == pytest.approx(92.0) and sgd["epoch_sgd_budget"] == 10
    # RBO's budget row after one step of 100 evaluations lands exactly on the budget of 100
    assert rbo["acc_sgd_budget_mean"] == pytest.approx(32.0) and rbo["acc_sgd_budget_std"] == pytest.approx(2.0)
    assert rbo["epoch_sgd_budget"] == pytest.approx(0.1) and rbo["evals_sgd_budget"] == 100
    assert rbo["acc_rbo_budget_mean"] == pytest.approx(97.5) and rbo["reached_rbo_budget"] == 3
    assert sgd["acc_rbo_budget_mean"] == pytest.approx(92.0) and sgd["reached_rbo_budget"] == 0
    # without the trainer's budget rows: the last evaluation within 100 evaluations is RBO's init row
    runs = tmp_path / "plain"
    write_table1_set(runs, with_budget_rows=False)
    with pytest.warns(RecordWarning):
        rbo = row(build(runs).equal, "rbo")
    assert rbo["acc_sgd_budget_mean"] == pytest.approx(10.0) and rbo["epoch_sgd_budget"] == 0


def test_equal_compute_never_takes_a_row_beyond_the_budget(tmp_path):
    """SGD's budget is 2 epochs × 10 batches = 20 evaluations; RBO's budget row comes after its first step, at
    100: beyond the budget, so RBO's accuracy there is its init row's, and the table shows 0 evaluations spent."""
    for seed in range(3):
        write_run(tmp_path, optimizer="sgd", seed=seed, epochs=2, final_acc=0.5)
        write_run(tmp_path, optimizer="rbo", seed=seed, epochs=2, final_acc=0.8, hyper=RBO_HYPER, evals_per_step=100,
                  budget_rows=[(2, 0.7)])
    agg = build(tmp_path)
    rbo = row(agg.equal, "rbo")
    assert rbo["sgd_budget"] == 20 and rbo["evals_sgd_budget"] == 0 and rbo["acc_sgd_budget_mean"] == pytest.approx(10)
    tables.write_tables(agg, tmp_path / "out")
    shown = pd.read_csv(tmp_path / "out/paper/table1/equal_compute.csv")
    assert list(shown["evals_sgd_budget"]) == [20, 0]
    assert "evals @ SGD budget" in (tmp_path / "out/paper/table1/equal_compute.md").read_text()


def test_max_sgd_epochs_caps_the_sgd_budget(tmp_path):
    for optimizer, evals in (("sgd", 1), ("rbo", 10)):
        write_run(tmp_path, optimizer=optimizer, epochs=100 if optimizer == "sgd" else 1, evals_per_step=evals,
                  config={"max_sgd_epochs": 10}, hyper=RBO_HYPER if optimizer == "rbo" else None)
    assert set(build(tmp_path).equal["sgd_budget"]) == {100}


def test_only_the_experiments_asked_for_are_read(tmp_path, capsys):
    """An ad-hoc sweep beside paper/table1: left out by default (the suite's experiments), read when named."""
    write_run(tmp_path, optimizer="sgd")
    write_run(tmp_path, experiment="sweeps/adhoc", optimizer="rbo", hyper=RBO_HYPER, epochs=3)
    agg = build(tmp_path)
    assert set(agg.groups["experiment"]) == {"paper/table1"} and set(agg.records.runs["experiment"]) == {"paper/table1"}
    assert "left out 1 records of experiments not asked for: sweeps/adhoc (1)" in agg.records.describe()
    assert run_results("--runs", str(tmp_path), "--out", str(tmp_path / "out"), "--experiments", "sweeps/adhoc",
                       root=tmp_path) == 0
    assert "paper/table1 (1)" in capsys.readouterr().out
    assert (tmp_path / "out/sweeps/adhoc/table.md").exists() and not (tmp_path / "out/paper").exists()


def test_suite_experiments_are_the_experiment_names_of_the_conf_files():
    names = sorted(experiment_files())
    assert {"paper/table1", "paper/heatmap", "quick/table1", "review/tuned"} <= set(names)
    assert "review/controls" not in names and "review/tuned_adamw" not in names  # they record as other experiments
    assert names == sorted(set(names))


def test_tables_name_the_tier_and_the_training_split(tmp_path):
    write_run(tmp_path, optimizer="sgd", dataset="fashion_mnist", experiment="fashion/table1", val_size=0)
    write_run(tmp_path, optimizer="rbo", dataset="fashion_mnist", experiment="fashion/table1", val_size=0,
              hyper=RBO_HYPER)
    write_run(tmp_path, optimizer="sgd", dataset="mnist_subset", experiment="quick/table1", val_size=1000)
    tables.write_tables(build(tmp_path, experiments=["fashion/table1", "quick/table1"]), tmp_path / "o")
    fashion = (tmp_path / "o/fashion/table1/table.md").read_text()
    assert fashion.startswith("# fashion/table1 (real data, full size, not in the paper)")
    assert "Trained on the whole training split" in fashion
    quick = (tmp_path / "o/quick/table1/table.md").read_text()
    assert quick.startswith("# quick/table1 (CPU-scale subset)") and "validation split of 1,000 examples" in quick
    assert not (tmp_path / "o/quick/table1/equal_compute.md").exists()  # one optimizer: nothing to compare


def test_cli_writes_markdown_csv_latex_and_index(tmp_path, capsys):
    runs, out = tmp_path / "runs", tmp_path / "results"
    write_table1_set(runs)
    with pytest.warns(RecordWarning):
        assert run_results("tables", "--runs", str(runs), "--out", str(out), root=tmp_path) == 0
    printed = capsys.readouterr().out
    assert "read 9 run records" in printed and "skipped 2" in printed
    folder = out / "paper/table1"
    for stem in ("table", "equal_compute"):
        for suffix in (".md", ".csv", ".tex"):
            assert (folder / stem).with_suffix(suffix).stat().st_size > 0
    md = (folder / "table.md").read_text()
    assert "92.00 ± 2.00" in md and "+0.23" in md and "| diverged" in md and "1 completed, 1 failed" in md
    csv = pd.read_csv(folder / "table.csv")
    assert set(csv["status"]) == {"completed", "diverged", "1 completed, 1 failed"}
    tex = (folder / "table.tex").read_text()
    assert r"\begin{tabular}" in tex and r"92.00 $\pm$ 2.00" in tex and "entropy\\_sgd" in tex
    assert "32.00 ± 2.00" in (folder / "equal_compute.md").read_text()
    view = (folder / "table1_view.md").read_text()
    assert "| 97.50 ± 0.50 (paper 97.51) |" in view and "| diverged (paper 95.22) |" in view
    assert "skipped 2 unreadable or incomplete records" in (out / "index.md").read_text()
    assert len(pd.read_csv(out / "runs.csv")) == 9
    assert (out / "claims.md").exists()
    assert not list(out.rglob("*.tmp"))


def write_heatmap(root, experiment="paper/heatmap", dataset="mnist"):
    """RBO on ρ ∈ {1, 2} × η ∈ {1, 10}, 3 epochs; ρ = 2, η = 10 diverged."""
    for radius in (1.0, 2.0):
        for lr in (1.0, 10.0):
            diverged = radius == 2.0 and lr == 10.0
            write_run(root, experiment=experiment, optimizer="rbo", dataset=dataset, epochs=3,
                      hyper={**RBO_HYPER, "radius": radius, "lr": lr}, evals_per_step=100,
                      final_acc=0.9 + 0.01 * radius + 0.001 * lr, status="diverged" if diverged else "completed",
                      diverged_at=1 if diverged else None)


def test_heatmap_table_marks_diverged_cells(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "results"
    write_heatmap(runs)
    agg = build(runs)
    grid = agg.heatmaps[("paper/heatmap", "mnist", "mlp")]
    assert sorted(grid["setting"]) == ["lr=1, radius=1", "lr=1, radius=2", "lr=10, radius=1", "lr=10, radius=2"]
    assert grid["paper_test_acc"].isna().all()  # 3 epochs: not the paper's Table 1 setting
    cells = tables.heatmap_cells(grid)
    assert cells.loc["ρ=2", "η=10"] == "div" and cells.loc["ρ=1", "η=1"] == "91.10"
    tables.write_tables(agg, out)
    assert "div" in (out / "paper/heatmap/heatmap_mnist_mlp.md").read_text()
    assert not (out / "paper/heatmap/equal_compute.md").exists()  # RBO only: no comparison table


def test_a_record_without_a_later_key_groups_with_those_at_its_default(tmp_path):
    """Records written before a setting existed (cuda_graphs) ran at its default: one group of seeds with the
    records that state it; a record at another value is another group."""
    write_run(tmp_path, seed=0)
    write_run(tmp_path, seed=1, config={"cuda_graphs": False, "tf32": False})
    write_run(tmp_path, seed=2, config={"tf32": True})
    runs = load_records(tmp_path).runs
    groups = runs.groupby("group")["seed"].apply(sorted).tolist()
    assert sorted(groups) == [[0, 1], [2]]


def test_a_record_without_a_later_dataset_option_groups_with_those_at_its_default(tmp_path):
    """The same for an option inside a group (dataset.shuffle, experiments.config.ADDED_KEYS)."""
    write_run(tmp_path, seed=0)
    write_run(tmp_path, seed=1, config={"dataset": {"name": "mnist", "val_size": 5000, "shuffle": True}})
    write_run(tmp_path, seed=2, config={"dataset": {"name": "mnist", "val_size": 5000, "shuffle": False}})
    groups = load_records(tmp_path).runs.groupby("group")["seed"].apply(sorted).tolist()
    assert sorted(groups) == [[0, 1], [2]]


def test_two_records_of_one_seed_are_one_run_the_newest(tmp_path):
    """A rerun under a new run id (here: a record written before cuda_graphs existed, then the same settings again)
    leaves two records of seed 0 in one group: the newest finished one is read, the other is listed as superseded,
    and the group has n = 2 seeds, not 3 samples."""
    old = write_run(tmp_path, seed=0, final_acc=0.5)
    new = write_run(tmp_path, seed=0, final_acc=0.9, config={"cuda_graphs": False})
    write_run(tmp_path, seed=1, final_acc=0.9)
    summary = json.loads((new / "summary.json").read_text())
    (new / "summary.json").write_text(json.dumps({**summary, "finished_at": "2025-02-01T00:00:00"}))
    with pytest.warns(RecordWarning, match="superseded"):
        records = load_records(tmp_path)
    assert sorted(records.runs["seed"]) == [0, 1] and records.runs["group"].nunique() == 1
    assert records.runs.set_index("seed").loc[0, "final_test_acc"] == 0.9
    assert set(records.metrics["run_id"]) == set(records.runs["run_id"])
    assert records.superseded == [(str(old), str(new))]
    assert f"superseded {old}: by {new}" in records.describe()
