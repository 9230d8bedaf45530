"""Run records (experiments/records.py): identity, atomic writes, file formats, summary (README.md "Run records")."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from conftest import compose_config

from experiments import records
from experiments.config import OUTPUT_ONLY_KEYS, without_registry_keys


@pytest.fixture(scope="module")
def config() -> dict:
    return records.to_container(compose_config("optimizer=rbo", "dataset=cifar10", "model=vgg9"))


def test_run_id_hashes_the_config_without_output_only_keys(config):
    rid = records.run_id(config)
    assert len(rid) == 12 and int(rid, 16) >= 0
    assert set(OUTPUT_ONLY_KEYS) == {"runs_dir", "data_dir", "logger", "progress", "log_every", "device", "on_change",
                                     "optimized_metric"}
    moved = {**config, "runs_dir": "/elsewhere", "data_dir": "/data", "progress": False, "log_every": 1,
             "device": "cuda:1", "logger": {"name": "none"}, "on_change": "rerun", "optimized_metric": "val_acc"}
    assert records.run_id(moved) == rid
    assert records.run_id(dict(reversed(list(config.items())))) == rid  # key order is irrelevant
    for changed in ({"seed": 1}, {"epochs": 3}, {"loss_scale": 10.0}, {"experiment_name": "other"},
                    {"optimizer": {**config["optimizer"], "radius": 0.5}}):
        assert records.run_id({**config, **changed}) != rid, changed


def test_an_option_added_later_keeps_earlier_run_ids_at_the_value_they_ran_at(config):
    """dataset.shuffle came after records existed: a config stating shuffle=true has the run_id of the same config
    without the key (a record written before it), shuffle=false is another run, and the caller's dict is untouched."""
    assert records.ADDED_KEYS == {"dataset.shuffle": True}
    assert config["dataset"]["shuffle"] is True
    before = {**config, "dataset": {k: v for k, v in config["dataset"].items() if k != "shuffle"}}
    assert records.run_id(config) == records.run_id(before)
    sequential = {**config, "dataset": {**config["dataset"], "shuffle": False}}
    assert records.run_id(sequential) != records.run_id(config)
    assert config["dataset"]["shuffle"] is True and sequential["dataset"]["shuffle"] is False


def test_run_id_follows_composed_overrides():
    a = records.to_container(compose_config("optimizer=sgd", "optimizer.lr=0.1"))
    b = records.to_container(compose_config("optimizer=sgd", "optimizer.lr=1e-1", "log_every=7"))
    assert records.run_id(a) == records.run_id(b)  # same numbers, same run


def test_run_dir_nests_the_experiment(config):
    nested = {**config, "runs_dir": "/r", "experiment_name": "paper/table1"}
    assert records.run_dir(nested) == Path("/r/paper/table1") / records.run_id(nested)


def test_atomic_write_replaces_or_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    records.write_atomic(path, b"old")
    records.write_atomic(path, b"new")
    assert path.read_bytes() == b"new"

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(records.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        records.write_atomic(path, b"torn")
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["summary.json"]  # no temp file left


def test_csv_columns_nan_and_exact_floats(tmp_path):
    rows = [{"epoch": 0.0, "trigger": "init", "step": 0, "test_acc": 0.1},
            {"epoch": 1 / 3, "trigger": "budget", "step": 7, "test_acc": 2 / 3, "diag_b": 1.5, "diag_a": math.nan}]
    path = tmp_path / "metrics.csv"
    records.write_csv(path, rows, ("epoch", "trigger", "step", "test_acc", "val_acc"))
    frame = pd.read_csv(path)
    assert list(frame.columns) == ["epoch", "trigger", "step", "test_acc", "val_acc", "diag_a", "diag_b"]
    assert frame["val_acc"].isna().all() and frame["diag_a"].isna().all() and math.isnan(frame["diag_b"][0])
    assert frame["epoch"][1] == 1 / 3 and frame["test_acc"][1] == 2 / 3  # repr round trip, no rounding
    assert list(frame["trigger"]) == ["init", "budget"]


def test_json_is_strict_with_nan_as_null(tmp_path):
    path = tmp_path / "summary.json"
    records.write_json(path, {"final": {"loss": math.nan, "acc": 0.5, "inf": math.inf}, "pair": (1, 2)})
    text = path.read_text()
    assert json.loads(text) == {"final": {"loss": None, "acc": 0.5, "inf": None}, "pair": [1, 2]}
    assert "NaN" not in text and "Infinity" not in text


def test_yaml_config_round_trip(tmp_path, config):
    records.write_yaml(tmp_path / "config.yaml", config)
    assert yaml.safe_load((tmp_path / "config.yaml").read_text()) == config


def test_checkpoint_loads_with_weights_only(tmp_path):
    state = {"model": {"w": torch.arange(3.0)}, "rng": {"cpu": torch.get_rng_state(), "cuda": None},
             "metrics": [{"epoch": 1.0, "trigger": "epoch", "budget_sgd_epochs": math.nan}],
             "counters": {"step": 3, "train_seconds": 0.5}}
    records.save_checkpoint(tmp_path / "checkpoint.pt", state)
    loaded = records.load_checkpoint(tmp_path / "checkpoint.pt", torch.device("cpu"))
    assert torch.equal(loaded["model"]["w"], state["model"]["w"])
    assert torch.equal(loaded["rng"]["cpu"], state["rng"]["cpu"]) and loaded["counters"] == state["counters"]
    assert loaded["metrics"][0]["trigger"] == "epoch" and math.isnan(loaded["metrics"][0]["budget_sgd_epochs"])


@pytest.mark.parametrize("content, expected", [
    ('{"status": "completed"}', "completed"), ('{"status": "diverged"}', "diverged"),
    ('{"status": "running"}', None), ('{"status": "failed"}', None), ('{"stat', None), (None, None),
])
def test_finished_status(tmp_path, content, expected):
    if content is not None:
        (tmp_path / "summary.json").write_text(content)
    assert records.finished_status(tmp_path) == expected


def test_summary_fields_final_and_cost(config):
    metrics = [{"epoch": 0.0, "trigger": "init", "train_loss": math.nan, "test_acc": 0.1},
               {"epoch": 1.0, "trigger": "epoch", "train_loss": 0.5, "test_acc": 0.8},
               {"epoch": 1.5, "trigger": "budget", "train_loss": math.nan, "test_acc": 0.9}]
    counters = {"step": 10, "grad_evals": 1000, "diag_evals": 2, "examples": 2560, "train_seconds": 4.0,
                "warmup_seconds": 0.5}
    env = {"versions": {}, "git_commit": None, "device": "cpu", "hardware": "cpu"}
    summary = records.build_summary(config, status="diverged", metrics=metrics, counters=counters,
                                    diagnostics={"grad_norm": 1.0}, env=env, started_at="t0", diverged_at_epoch=1.7)
    assert list(summary) == ["run_id", "experiment", "status", "epochs", "epochs_completed", "optimizer", "dataset",
                             "model", "seed", "hyper", "final", "cost", "diagnostics", "error", "diverged_at_epoch",
                             "versions", "git_commit", "device", "hardware", "started_at", "finished_at"]
    assert summary["run_id"] == records.run_id(config)
    assert summary["hyper"] == without_registry_keys(config)["optimizer"]  # the registry keys say how, not what
    assert (summary["optimizer"], summary["dataset"], summary["model"]) == ("rbo", "cifar10", "vgg9")
    assert summary["epochs_completed"] == 1.0 and summary["final"]["test_acc"] == 0.8  # budget rows are not final
    assert summary["cost"] == {"grad_evals": 1000, "diag_evals": 2, "examples": 2560, "train_seconds": 4.0,
                               "warmup_seconds": 0.5, "seconds_per_epoch": 4.0, "grad_evals_per_step": 100.0}
    assert summary["diverged_at_epoch"] == 1.7 and summary["error"] is None and summary["finished_at"] is None
    empty = records.build_summary(config, status="running", metrics=[], counters={**counters, "step": 0},
                                  diagnostics={}, env=env, started_at="t0")
    assert empty["cost"]["seconds_per_epoch"] is None and empty["cost"]["grad_evals_per_step"] is None
    assert all(math.isnan(v) for v in empty["final"].values())


def test_environment(monkeypatch):
    env = records.environment(torch.device("cpu"))
    assert set(env) == {"versions", "git_commit", "device", "hardware"}
    assert set(env["versions"]) == {"python", "torch", "torchvision", "rbo_bench"}
    assert env["versions"]["torch"] == torch.__version__ and env["device"] == "cpu" and env["hardware"]

    def no_git(*args, **kwargs):
        raise subprocess.CalledProcessError(128, "git")

    monkeypatch.setattr(records.subprocess, "run", no_git)
    assert records.git_commit.__wrapped__() is None  # uncached: the process's first answer is kept otherwise


def test_code_identity_is_taken_once_per_process(monkeypatch):
    """A multirun's later jobs run the code their process loaded: a source file edited mid-sweep changes neither the
    source hash nor the commit their records state."""
    first, commit = records.source_sha256(), records.git_commit()
    monkeypatch.setattr(Path, "read_bytes", lambda self: b"edited mid-sweep")
    monkeypatch.setattr(records.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, "f" * 40, ""))
    assert records.source_sha256() == first and records.git_commit() == commit
    assert records.source_sha256.__wrapped__() != first  # what a new process would record


# ---- records that check themselves (issue 23) -------------------------------------------------------------------

PLAUSIBLE = {"status": "completed", "epochs_completed": 2.0,
             "final": {"train_loss": 0.1, "train_acc": 0.5, "val_loss": None, "val_acc": None, "test_loss": 2.3,
                       "test_acc": 1.0},
             "cost": {"grad_evals": 10, "diag_evals": 0, "examples": 100, "train_seconds": 1.5, "warmup_seconds": 0.0}}


def test_summary_problems_name_every_impossible_value():
    assert records.summary_problems(PLAUSIBLE) == []  # null: not measured (no validation split, a NaN)
    damaged = {**PLAUSIBLE, "epochs_completed": -1,
               "final": {**PLAUSIBLE["final"], "test_acc": 7.5, "val_acc": -1, "train_loss": -0.1, "train_acc": "high"},
               "cost": {**PLAUSIBLE["cost"], "grad_evals": -5}}
    assert records.summary_problems(damaged) == [
        "final train_acc 'high' (allowed: [0, 1])", "final val_acc -1 (allowed: [0, 1])",
        "final test_acc 7.5 (allowed: [0, 1])", "final train_loss -0.1 (allowed: a number >= 0)",
        "cost grad_evals -5 (allowed: a number >= 0)", "epochs_completed -1 (allowed: a number >= 0)"]
    assert records.summary_problems({"status": "completed"}) == [
        "final None, cost None (allowed: the summary's final and cost tables)"]


def test_skip_decision_on_the_writing_side(tmp_path, config):
    """Finished: skipped (config.yaml restored if gone); damaged: set aside and trained; unfinished: trained."""
    records.write_json(tmp_path / "summary.json", {**PLAUSIBLE, "status": "running"})
    assert records.skip_decision(tmp_path, "keep", config) == records.Decision(False, None)
    records.write_json(tmp_path / "summary.json", PLAUSIBLE)
    assert records.skip_decision(tmp_path, "keep", config) == records.Decision(
        True, f"skip: {tmp_path} completed; config.yaml was missing: restored from this run's config "
              f"(run_id {records.run_id(config)})")
    assert yaml.safe_load((tmp_path / "config.yaml").read_text()) == config
    assert records.skip_decision(tmp_path, "keep", config) == records.Decision(True, f"skip: {tmp_path} completed")
    records.write_json(tmp_path / "summary.json", {**PLAUSIBLE, "final": {**PLAUSIBLE["final"], "test_acc": 7.5}})
    decision = records.skip_decision(tmp_path, "keep", config)
    assert decision.skip is False and decision.aside == "damaged"
    assert decision.message.startswith(f"damaged: {tmp_path} says completed but its summary.json holds final "
                                       "test_acc 7.5 (allowed: [0, 1]); its files go to a hidden .damaged-<time>/")
