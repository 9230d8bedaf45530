"""Config errors at composition, before any job is queued (issue 12, "Config"): choices as enums, schemas out of
the user-facing groups, ``hydra.job.name`` from the experiment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CONF, SMALL, compose_config
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import OmegaConf

from experiments.config import SCHEMAS

ROOT = Path(__file__).resolve().parents[1]
GROUPS = ("optimizer", "dataset", "model", "logger")


@pytest.mark.parametrize("override, allowed", [
    ("precision=fp16", "[fp32, bf16]"),
    ("scheduler=step", "[none, cosine]"),
    ("logger=wandb logger.mode=cloud", "[online, offline, disabled]"),
    ("dataset.normalize=zscore", "[scale, standardize]"),
])
def test_bad_choice_fails_at_composition(override, allowed):
    with pytest.raises(ConfigCompositionException) as err:
        compose_config(*override.split())
    key, value = override.split()[-1].split("=")
    message = f"{err.value} {err.value.__cause__}"
    assert f"Invalid value '{value}', expected one of {allowed}" in message and f"full_key: {key}" in message, message


@pytest.mark.parametrize("group", GROUPS)
def test_every_option_composes_onto_its_schema(group):
    """Each conf/<group>/<option>.yaml names its schema in its defaults list: the node is typed by it."""
    schemas = set(SCHEMAS[group].values())
    for option in sorted(p.stem for p in (CONF / group).glob("*.yaml")):
        node = compose_config(f"{group}={option}")[group]
        assert OmegaConf.get_type(node) in schemas, (group, option, OmegaConf.get_type(node))


def test_schemas_are_not_group_choices():
    with pytest.raises(MissingConfigException):
        compose_config("optimizer=schema_optimizer_rbo")
    out = subprocess.run([sys.executable, "-m", "experiments.train", "--help"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    groups = out.split("== Configuration groups ==")[1].split("== Config ==")[0]
    assert "adamw" in groups.split("\noptimizer: ")[1].splitlines()[0] and "logger: none, wandb" in groups, groups
    assert "schema" not in groups, groups


@pytest.mark.parametrize("experiment, name", [(None, "default"), ("quick/table1", "quick-table1")])
def test_hydra_job_name_is_the_experiment(experiment, name):
    """SLURM job names (the submitit launcher's ``name: ${hydra.job.name}``) and log names say the experiment."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={experiment}"] if experiment else [],
                      return_hydra_config=True)
    assert cfg.hydra.job.name == name


@pytest.mark.slow
def test_optuna_preset_runs_three_trials_and_reports_the_best(tmp_path):
    """hparams_search=baselines_lr on synthetic data: three trials of lr, each an ordinary run record; the sweeper's
    best is the trial with the highest final val_acc, which experiments.train returned to it."""
    runs, sweep = tmp_path / "runs", tmp_path / "multirun"
    subprocess.run([sys.executable, "-m", "experiments.train", "hparams_search=baselines_lr", *SMALL, "optimizer=sgd",
                    "hydra.sweeper.n_trials=3", "hydra.sweeper.sampler.n_startup_trials=3", f"runs_dir={runs}",
                    f"hydra.sweep.dir={sweep}"], cwd=tmp_path, check=True, capture_output=True)
    summaries = [json.loads(p.read_text()) for p in runs.glob("default/*/summary.json")]
    assert len(summaries) == 3 and all(s["status"] == "completed" for s in summaries)
    assert all(0.001 <= s["hyper"]["lr"] <= 1.0 for s in summaries) and len({s["hyper"]["lr"] for s in summaries}) == 3
    best = max(summaries, key=lambda s: s["final"]["val_acc"])
    result = OmegaConf.load(sweep / "optimization_results.yaml")
    assert result.best_value == best["final"]["val_acc"]
    assert result.best_params["optimizer.lr"] == best["hyper"]["lr"]
