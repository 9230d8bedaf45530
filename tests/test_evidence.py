"""What counts as evidence (issues 20, 23): records that check themselves, finite blow-ups, only launched configs,
the committed evidence read first and never erased, and a fresh clone rebuilding the committed tables from it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_aggregate import RBO_HYPER, build, write_run

from scripts import evidence, results
from scripts.records import RecordWarning, load_records

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "results" / "records"


def edit_summary(folder: Path, **changes) -> None:
    summary = json.loads((folder / "summary.json").read_text())
    for dotted, value in changes.items():
        node, *path = dotted.split("__")
        target = summary
        for key in [node, *path][:-1]:
            target = target[key]
        target[[node, *path][-1]] = value
    (folder / "summary.json").write_text(json.dumps(summary))


@pytest.mark.parametrize("change, why", [
    ({"final__test_acc": 7.5}, "final test_acc 7.5"),
    ({"final__val_acc": -1}, "final val_acc -1"),
    ({"cost__grad_evals": -5}, "cost grad_evals -5"),
    ({"final__test_acc": 0.5}, "disagrees with metrics.csv"),
    ({"cost__grad_evals": 3}, "below metrics.csv"),
])
def test_a_summary_out_of_range_or_against_its_metrics_is_damaged(tmp_path, change, why):
    folder = write_run(tmp_path, seed=0, final_acc=0.9)
    write_run(tmp_path, seed=1, final_acc=0.9)
    edit_summary(folder, **change)
    with pytest.warns(RecordWarning, match="damaged"):
        records = load_records(tmp_path)
    assert list(records.runs["seed"]) == [1]  # never averaged
    assert len(records.damaged) == 1 and why in records.damaged[0][1]
    assert f"damaged {folder}" in records.describe()


def test_a_finished_record_without_its_config_is_damaged_not_a_group_of_its_own(tmp_path):
    folder = write_run(tmp_path, seed=0)
    write_run(tmp_path, seed=1)
    (folder / "config.yaml").unlink()
    with pytest.warns(RecordWarning, match="config.yaml"):
        frame = build(tmp_path, ["paper/table1"])
    assert len(frame.groups) == 1 and frame.groups["n"].iloc[0] == 1


def test_a_finite_blow_up_is_a_divergence(tmp_path):
    """A Gauss–Newton-like run that 'completed' at training loss 1e12: diverged, by the stated rule."""
    for seed in range(3):
        write_run(tmp_path, optimizer="rbo", seed=seed, hyper=RBO_HYPER, final_loss=1e12 if seed == 0 else 0.05)
    records = load_records(tmp_path)
    assert records.runs.set_index("seed").loc[0, "status"] == "diverged"
    assert "blown up" in records.describe() and "10 × ln(classes)" in records.describe()
    group = build(tmp_path, ["paper/table1"]).groups.iloc[0]
    assert group["n"] == 2 and group["diverged_seeds"] == "0"


def test_the_committed_evidence_then_runs_one_record_per_run_id(tmp_path):
    committed, runs = tmp_path / "committed", tmp_path / "runs"
    old = write_run(committed, seed=0, final_acc=0.9)
    shutil.copytree(old, runs / old.relative_to(committed))
    write_run(runs, seed=1, final_acc=0.92)
    records = load_records(committed, runs, tmp_path / "absent")
    assert sorted(records.runs["seed"]) == [0, 1] and set(records.runs["path"]) <= {str(p) for p in runs.rglob("*")}
    assert records.sources == [f"{committed} (1 records)", f"{runs} (2 records)", f"{tmp_path / 'absent'} (absent)"]


def test_launch_key_leaves_out_a_measured_lr_only():
    config = {"optimizer": {"name": "sgd_effective_lr", "lr": 0.2, "reference": "rbo"}, "seed": 0}
    assert evidence.launch_key(config) == evidence.launch_key({**config, "optimizer": {**config["optimizer"],
                                                                                       "lr": None}})
    sgd = {"optimizer": {"name": "sgd", "lr": 0.2}, "seed": 0}
    assert evidence.launch_key(sgd) != evidence.launch_key({**sgd, "optimizer": {"name": "sgd", "lr": 0.1}})


def test_only_what_the_sweeps_launch_is_evidence(tmp_path):
    """quick/heatmap's own configs are launched; the same with epochs=20 (``make ... ARGS=epochs=20``) is ad hoc."""
    from hydra import compose, initialize_config_dir

    from experiments.config import CONF_DIR
    from experiments.records import to_container

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        base = ["experiment=quick/heatmap", "optimizer.radius=2", "optimizer.lr=1", "seed=0", f"runs_dir={tmp_path}"]
        cfgs = [compose("config", overrides=[*base, *extra]) for extra in ([], ["epochs=20"])]
    for cfg in cfgs:
        config = json.loads(json.dumps(to_container(cfg)))  # plain types, as config.yaml holds them
        write_run(tmp_path, experiment="quick/heatmap", optimizer="rbo", dataset="mnist_subset",
                  epochs=config["epochs"], hyper=config["optimizer"], evals_per_step=100, config=config)
    records = load_records(tmp_path)
    kept = evidence.only_launched(records, evidence.launched(["quick/heatmap"]))
    assert list(kept.runs["epochs"]) == [1.0] and kept.ad_hoc == {"quick/heatmap": 1}
    assert "left out 1 ad-hoc records" in kept.describe()


def test_commit_copies_finished_records_in_compact_form(tmp_path):
    runs = tmp_path / "runs"
    done = write_run(runs, seed=0)
    (done / "checkpoint.pt").write_bytes(b"big")
    (done / "steps.csv").write_text("step\n1\n")
    write_run(runs, seed=1, status="running")
    written = evidence.commit(load_records(runs), tmp_path / "committed")
    assert [p.name for p in written] == [done.name]
    assert sorted(p.name for p in written[0].iterdir()) == ["config.yaml", "metrics.csv", "summary.json"]


def test_an_empty_runs_folder_never_erases_a_verdict(tmp_path, monkeypatch):
    """``make tables RUNS=<empty>``: the committed evidence is still read; results are the same as from it alone."""
    monkeypatch.setattr(results, "launched", lambda names: {})
    committed = tmp_path / "committed"
    for seed in range(3):
        write_run(committed, experiment="fashion_cpu/table1", optimizer="rbo", dataset="fashion_mnist", seed=seed,
                  hyper=RBO_HYPER, final_acc=0.85 + 0.01 * seed, val_size=0)
        write_run(committed, experiment="fashion_cpu/table1", optimizer="rbo_radius0", dataset="fashion_mnist",
                  seed=seed, hyper={**RBO_HYPER, "radius": 0.0}, final_acc=0.80 + 0.01 * seed, val_size=0)
    (tmp_path / "empty").mkdir()
    for out, runs in (("a", tmp_path / "absent"), ("b", tmp_path / "empty")):
        assert results.main(["tables", "--evidence", str(committed), "--runs", str(runs), "--out",
                             str(tmp_path / out)]) == 0
    claims = [(tmp_path / out / "claims.md").read_text() for out in "ab"]
    assert claims[0] == claims[1] and "| 5 | The radius matters: RBO against the same RBO with ρ = 0" in claims[0]
    assert "supported (real data" in claims[0].split("| 5 |")[1].splitlines()[0]


COMMITTED_SUBSET = ("quick/heatmap",)  # small: 9 records


@pytest.mark.skipif(not (COMMITTED / "quick").is_dir(), reason="no committed quick evidence in this checkout")
@pytest.mark.parametrize("experiment", COMMITTED_SUBSET)
def test_a_fresh_clone_rebuilds_the_committed_tables_from_the_committed_records(tmp_path, experiment):
    """The committed records alone (no runs/) rebuild the committed tables of ``experiment`` byte for byte."""
    out = tmp_path / "results"
    assert results.main(["tables", "--evidence", str(COMMITTED), "--runs", str(tmp_path / "no-runs"), "--out",
                         str(out), "--experiments", experiment]) == 0
    built = sorted(p.relative_to(out) for p in (out / experiment).glob("*.*"))
    assert built and all((out / p).read_bytes() == (REPO / "results" / p).read_bytes() for p in built), built


def test_committed_records_are_compact():
    configs = [yaml.safe_load(p.read_text()) for p in COMMITTED.rglob("config.yaml")]
    if not configs:
        pytest.skip("no committed run records in this checkout")
    files = [p for p in COMMITTED.rglob("*") if p.is_file()]
    names = {p.name for p in files} - {"record.json"}
    assert names <= set(evidence.COMPACT_FILES), names
    assert all("runs_dir" in c for c in configs)
    size = sum(p.stat().st_size for p in files)
    assert size < 40 * 2 ** 20, f"{size / 2 ** 20:.1f} MiB of committed records"
    assert pd.Series([p.parent.name for p in COMMITTED.rglob("summary.json")]).is_unique
