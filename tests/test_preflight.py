"""Pre-flight (issue 16): every invalid value and every missing dataset of a sweep in one message before anything
is launched, exit 2, no record; every optimizer's hyperparameters checked before data or model are built."""

from __future__ import annotations

import pytest
import yaml
from conftest import CONF, compose_config

import experiments.data as data
import experiments.trainer as trainer
from experiments.optim import check_optimizer_config
from experiments.preflight import PreflightError, dataset_files, preflight
from experiments.train import run
from scripts import plan

# every shipped optimizer config that runs as it is (custom.yaml needs its _target_ on the command line)
OPTIMIZERS = sorted(path.stem for path in (CONF / "optimizer").glob("*.yaml")
                    if "???" not in yaml.safe_load(path.read_text()).values())


@pytest.fixture
def no_data_loading(monkeypatch):
    """Any attempt to load a dataset fails the test: the checks must come first."""
    def refuse(*args, **kwargs):
        pytest.fail("data were loaded before the config was checked")

    monkeypatch.setattr(trainer, "load_dataset", refuse)
    monkeypatch.setattr(data, "load_dataset", refuse)


# ---- datasets ---------------------------------------------------------------------------------------------

def test_every_missing_dataset_in_one_message_before_launch(tmp_path, capsys):
    """paper/table1 needs MNIST, CIFAR-10 and CIFAR-100: all three named at once, exit 2, nothing written."""
    runs, empty = tmp_path / "runs", tmp_path / "data"
    code = plan.main(["--no-timing", "paper/table1", "--", f"runs_dir={runs}", f"data_dir={empty}",
                      "dataset.download=false"])
    err = capsys.readouterr().err
    assert code == plan.EXIT_PREFLIGHT and "pre-flight: 3 problem(s)" in err, err
    for name, folder in (("MNIST", "MNIST/raw"), ("CIFAR10", "cifar-10-batches-py"), ("CIFAR100", "cifar-100-python")):
        assert f"{name} is not in {empty / folder} (download=False)" in err
    assert not runs.exists()


def test_download_true_fetches_each_dataset_once_and_lists_failures(tmp_path, monkeypatch, capsys):
    fetched = []

    def offline(name, **kwargs):
        fetched.append(name)
        raise data.DataMissing(f"{name}: download failed: no network")

    monkeypatch.setattr(data, "load_dataset", offline)
    extra = ["--", f"runs_dir={tmp_path / 'runs'}", f"data_dir={tmp_path / 'data'}"]
    assert plan.main(["--no-timing", "paper/table1", *extra]) == 0  # without --fetch: a note, the plan is printed
    out = capsys.readouterr().out
    assert fetched == [] and out.count("note: ") == 3 and "download=True will try to fetch them" in out
    assert plan.main(["--no-timing", "--fetch", "paper/table1", *extra]) == plan.EXIT_PREFLIGHT
    assert sorted(fetched) == ["cifar10", "cifar100", "mnist"]  # once per dataset, not once per job
    assert "cifar100: download failed: no network" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_a_job_without_its_data_writes_no_record(small_cfg, runs_dir, tmp_path, no_data_loading):
    cfg = small_cfg("dataset=mnist", "model=mlp", f"data_dir={tmp_path / 'nothing'}", "dataset.download=false")
    with pytest.raises(PreflightError, match=r"MNIST is not in .*nothing/MNIST/raw \(download=False\)"):
        run(cfg)
    assert not runs_dir.exists()


def test_dataset_files_are_what_the_run_reads(small_cfg):
    assert dataset_files(small_cfg()) == []  # synthetic
    subset = dataset_files(small_cfg("dataset=mnist_subset"))
    assert [p.name for p in subset] == ["images-idx3-ubyte.gz", "labels-idx1-ubyte.gz"]
    assert all(p.is_file() for p in subset)


# ---- values -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("lr", ["nan", "inf", "-1"])
def test_bad_lr_is_rejected_before_data_for_every_optimizer(small_cfg, runs_dir, name, lr, no_data_loading):
    cfg = small_cfg(f"optimizer={name}", f"optimizer.lr={lr}")
    with pytest.raises(ValueError) as err:
        run(cfg)
    message = str(err.value)
    assert message.startswith(f"optimizer.lr={float(lr)!r} is not allowed; allowed: ") and "\n" not in message
    assert not runs_dir.exists()


@pytest.mark.parametrize("overrides, words", [
    (("optimizer=rbo", "optimizer.radius=-2"), "optimizer.radius=-2.0 is not allowed; allowed: the ball radius ρ"),
    (("optimizer=rbo", "optimizer.proj_steps=0"), "optimizer.proj_steps=0 is not allowed; allowed: the number of"),
    (("optimizer=rbo", "optimizer.proj_lr=nan"), "optimizer.proj_lr=nan is not allowed; allowed: finite numbers"),
    (("optimizer=rbo_gauss_newton", "optimizer.proj_tol=0"), "optimizer.proj_tol=0.0 is not allowed"),
    (("optimizer=sam", "optimizer.rho=-0.1"), "optimizer.rho=-0.1 is not allowed; allowed: rho >= 0"),
    (("optimizer=sam", "optimizer.max_grad_norm=0"), "optimizer.max_grad_norm=0.0 is not allowed"),
    (("optimizer=sam", "optimizer.base=lion"), "optimizer.base='lion' is unknown; allowed: sgd, adamw"),
    (("optimizer=sgd", "optimizer.momentum=1.5"), "optimizer.momentum=1.5 is not allowed; allowed: a number in [0, 1)"),
    (("optimizer=sgd", "optimizer.weight_decay=-1"), "optimizer.weight_decay=-1.0 is not allowed"),
    (("optimizer=sgd", "optimizer.nesterov=true"), "optimizer.nesterov=True is not allowed; allowed: false, or"),
    (("optimizer=adamw", "optimizer.betas=[0.9,1.0]"), "optimizer.betas=[0.9, 1.0] is not allowed"),
    (("optimizer=adamw", "optimizer.eps=0"), "optimizer.eps=0.0 is not allowed; allowed: a number > 0"),
    (("optimizer=adamw", "optimizer.betas=[0.9,inf]"), "optimizer.betas=[0.9, inf] is not allowed; allowed: finite"),
    (("optimizer=entropy_sgd", "optimizer.L=0"), "optimizer.L=0 is not allowed; allowed: an integer >= 1"),
    (("optimizer=entropy_sgd", "optimizer.gamma=-1"), "optimizer.gamma=-1.0 is not allowed"),
    (("optimizer=sgd_k_steps", "optimizer.steps_per_batch=0"), "optimizer.steps_per_batch=0 is not allowed"),
])
def test_out_of_range_hyperparameters_name_key_value_and_range(small_cfg, runs_dir, overrides, words,
                                                               no_data_loading):
    with pytest.raises(ValueError) as err:
        run(small_cfg(*overrides))
    assert str(err.value).startswith(words) and "\n" not in str(err.value), str(err.value)
    assert not runs_dir.exists()


def test_every_shipped_optimizer_config_passes():
    for name in OPTIMIZERS:
        cfg = compose_config(f"optimizer={name}")
        check_optimizer_config(cfg.optimizer, lr_pending=True)


def test_preflight_lists_every_distinct_problem_with_its_job_count(small_cfg):
    cfgs = [small_cfg("optimizer=sgd", f"optimizer.lr={lr}") for lr in ("0.1", "-1", "-1", "nan")]
    cfgs.append(small_cfg("optimizer=sgd_effective_lr"))  # lr null until its reference runs finish: fine here
    with pytest.raises(PreflightError) as err:
        preflight(cfgs)
    lines = str(err.value).splitlines()
    assert lines[0].startswith("pre-flight: 2 problem(s)")
    assert lines[1:] == ["- optimizer.lr=-1.0 is not allowed; allowed: a number > 0 (2 jobs)",
                         "- optimizer.lr=nan is not allowed; allowed: finite numbers (1 job)"]
    assert preflight(cfgs[:1] + cfgs[-1:]) == []
