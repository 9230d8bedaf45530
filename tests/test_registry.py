"""The optimizer registry (issue 22): every optimizer is one ``conf/optimizer/*.yaml``, built by Hydra, checked
before any work, read by the results pipeline without torch; its registry keys never change a run's identity."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import SMALL, compose_config
from constants import CUSTOM, OPTIMIZERS
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from experiments import records
from experiments.config import REGISTRY_KEYS, Protocol, Role, without_registry_keys
from experiments.optim import check_optimizer_config
from experiments.registry import optimizer_info

ROOT = Path(__file__).resolve().parents[1]
# Run records made before the registry (evidence committed under results/records/); RBO_EVIDENCE_RECORDS points
# the identity test at another folder of records (e.g. the evidence runs while they are being made).
EVIDENCE = Path(os.environ.get("RBO_EVIDENCE_RECORDS", ROOT / "results" / "records"))


# ---- the registry -------------------------------------------------------------------------------------------

def test_optimizer_info_reads_every_file_without_importing_torch():
    code = ("import json, sys; from experiments.registry import optimizer_info; "
            "info = {n: vars(i) for n, i in optimizer_info().items()}; "
            "print(json.dumps({'torch': 'torch' in sys.modules, 'info': info}))")
    out = json.loads(subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True,
                                    text=True).stdout)
    assert out["torch"] is False
    info = out["info"]
    assert set(info) == set(OPTIMIZERS) - {"custom"}  # custom is a template: its runs are named by their class
    assert [i["order"] for i in info.values()] == list(range(len(info)))
    assert list(info)[:4] == ["sgd", "entropy_sgd", "sam", "rbo"]  # the paper's Table 1 columns first
    roles = [i["role"] for i in info.values()]
    assert roles == sorted(roles, key=list(Role).index)
    for name, entry in info.items():
        assert entry["name"] == name and entry["display_name"] and entry["target"]
        assert entry["protocol"] in set(Protocol) and isinstance(entry["create_graph"], bool)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_each_file_is_one_optimizer_named_after_it(name):
    optimizer = compose_config(f"optimizer={name}", *(CUSTOM if name == "custom" else ())).optimizer
    assert optimizer.name == (optimizer._target_ if name == "custom" else name)
    assert optimizer._partial_ is True and optimizer.display_name
    info = optimizer_info().get(name)
    if info is not None:
        assert (info.display_name, info.protocol, info.create_graph, info.target) == \
            (optimizer.display_name, optimizer.protocol, optimizer.create_graph, optimizer._target_)


@pytest.mark.parametrize("override", ["optimizer.protocl=plain", "optimizer.protocol=backward",
                                      "optimizer.role=favourite", "optimizer.create_graph=maybe",
                                      "optimizer=lion optimizer.betas=[0.9,0.99]"])
def test_a_misspelt_registry_key_or_value_fails_at_composition(override):
    with pytest.raises((HydraException, OmegaConfBaseException)):
        compose_config(*override.split())


# ---- identity: registry keys say how an optimizer is built and shown, not what it computes ------------------------

def test_registry_keys_are_left_out_of_the_run_id_and_the_recorded_hyperparameters():
    config = records.to_container(compose_config("optimizer=sam_momentum"))
    assert {f"optimizer.{k}" for k in config["optimizer"]} >= set(REGISTRY_KEYS)
    shown = {**config, "optimizer": {**config["optimizer"], "display_name": "Other", "colour": "black",
                                     "role": "zoo", "order": 9, "protocol": "plain", "create_graph": True}}
    assert records.run_id(shown) == records.run_id(config) == records.run_id(without_registry_keys(config))
    changed = {**config, "optimizer": {**config["optimizer"], "rho": 0.1}}
    assert records.run_id(changed) != records.run_id(config)
    summary = records.build_summary(config, status="running", metrics=[], counters={
        "step": 0, "grad_evals": 0, "diag_evals": 0, "examples": 0, "train_seconds": 0.0}, diagnostics={}, env={},
        started_at="now")
    assert summary["hyper"] == without_registry_keys(config)["optimizer"] and "display_name" not in summary["hyper"]


def evidence_records() -> list[Path]:
    return sorted(p.parent for p in EVIDENCE.rglob("invocations.json")) if EVIDENCE.is_dir() else []


@pytest.mark.skipif(not evidence_records(), reason=f"no run records under {EVIDENCE}")
def test_configs_composed_now_find_the_records_made_before_the_registry():
    """Each record's job, composed by today's code from the overrides that launched it, has the record's run_id
    (sgd_effective_lr's lr, resolved from other records at launch, is taken from the record)."""
    wrong = []
    for record in evidence_records():
        overrides = json.loads((record / "invocations.json").read_text())[0]["overrides"]
        cfg = compose_config(*overrides)
        if cfg.optimizer.lr is None:
            cfg.optimizer.lr = yaml.safe_load((record / "config.yaml").read_text())["optimizer"]["lr"]
        if records.run_id(records.to_container(cfg)) != record.name:
            wrong.append(str(record.relative_to(EVIDENCE)))
    assert not wrong, f"{len(wrong)} of {len(evidence_records())} records would not be found: {wrong[:5]}"


# ---- checks before any work, for any class ---------------------------------------------------------------------

@pytest.mark.parametrize("overrides, words", [
    (("optimizer=custom", "optimizer.lr=0.1"), "optimizer._target_ is missing; allowed: an importable optimizer"),
    (("optimizer=custom", "optimizer._target_=torch.optim.Adam"), "optimizer.lr is missing; allowed: a value"),
    (("optimizer=custom", CUSTOM[0], "optimizer.lr=0.1", "+optimizer.kwargs.amsgard=true"),
     "optimizer.kwargs.amsgard is not allowed: torch.optim.Adam takes no argument 'amsgard'; allowed: lr, betas, "),
    (("optimizer=custom", "optimizer._target_=torch.optim.Adamm", "optimizer.lr=0.1"),
     "optimizer._target_='torch.optim.Adamm' cannot be built"),
    (("optimizer=custom", *CUSTOM, "+optimizer.kwargs.lr=0.1"), "optimizer.kwargs.lr is not allowed; allowed: "
                                                                "optimizer.lr"),
    (("optimizer=custom", *CUSTOM, "+optimizer.kwargs.betas=[0.9,1.5]"), "optimizer.kwargs.betas=[0.9, 1.5] is not"),
    (("optimizer=sgd", "optimizer._partial_=false"), "optimizer._partial_=False is not allowed; allowed: true"),
])
def test_any_class_is_checked_before_any_work_in_one_sentence(overrides, words):
    with pytest.raises(ValueError) as err:
        check_optimizer_config(compose_config(*overrides).optimizer)
    assert str(err.value).startswith(words) and "\n" not in str(err.value), str(err.value)


@pytest.mark.parametrize("name, override, key", [
    ("friendly_sam", "optimizer.kwargs.sigma=-1", "optimizer.kwargs.sigma=-1 is not allowed; allowed: what "
                                                  "pytorch_optimizer.FriendlySAM accepts"),
    ("lion", "+optimizer.kwargs.beta=0.9", "optimizer.kwargs.beta=0.9 is not allowed: pytorch_optimizer.Lion takes "
                                           "no such argument (it would be ignored); allowed: lr, betas, weight_decay"),
])
def test_a_third_party_refusal_names_the_key_and_value(name, override, key):
    pytest.importorskip("pytorch_optimizer")
    with pytest.raises(ValueError) as err:
        check_optimizer_config(compose_config(f"optimizer={name}", override).optimizer)
    assert str(err.value).startswith(key) and "\n" not in str(err.value), str(err.value)


# ---- any importable class, end to end ----------------------------------------------------------------------------

def test_any_importable_class_trains_with_the_same_records(tmp_path):
    """``optimizer=custom optimizer._target_=torch.optim.Adam``: one run through the command line, named by its class,
    with the same record files, metrics columns and cost counters as every optimizer of the suite."""
    runs = tmp_path / "runs"
    subprocess.run([sys.executable, "-m", "experiments.train", *SMALL, "optimizer=custom", *CUSTOM,
                    "+optimizer.kwargs.weight_decay=0.01", f"runs_dir={runs}", f"hydra.run.dir={tmp_path / 'out'}"],
                   cwd=ROOT, check=True, capture_output=True)
    [record] = (runs / "default").iterdir()
    summary = json.loads((record / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["optimizer"] == "torch.optim.Adam"
    assert summary["hyper"]["kwargs"] == {"weight_decay": 0.01} and "_target_" not in summary["hyper"]
    assert summary["cost"]["grad_evals"] == 6 and summary["cost"]["grad_evals_per_step"] == 1.0
    header = (record / "metrics.csv").read_text().splitlines()[0].split(",")
    assert set(records.METRICS_COLUMNS) <= set(header)
    assert yaml.safe_load((record / "config.yaml").read_text())["optimizer"]["_target_"] == "torch.optim.Adam"


def test_the_readmes_new_optimizer_is_one_file_and_one_command(tmp_path, monkeypatch):
    """README "Adding an optimizer": its YAML file (an optimizer not in the suite) dropped into a copy of conf/, and
    its command (on the tiny synthetic data), train with the suite's records; the file keeps its protocol."""
    from hydra import compose, initialize_config_dir
    from test_protocols import violations

    from experiments import registry
    from experiments.trainer import Trainer

    section = (ROOT / "README.md").read_text().split("## Adding an optimizer\n", 1)[1].split("\n## ", 1)[0]
    file_text = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    command = section.split("```bash\n", 1)[1].split("```", 1)[0].split()
    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", conf)
    name = yaml.safe_load(file_text)["name"]
    assert not (ROOT / "conf" / "optimizer" / f"{name}.yaml").exists()  # not in the suite
    (conf / "optimizer" / f"{name}.yaml").write_text(file_text)
    monkeypatch.setattr(registry, "OPTIMIZER_CONF", conf / "optimizer")
    assert command[:3] == ["python", "-m", "experiments.train"]
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose("config", overrides=[*command[3:], *SMALL, f"runs_dir={tmp_path / 'runs'}"])
    assert violations(cfg.optimizer) == []
    summary = Trainer(cfg).run()
    assert summary["status"] == "completed" and summary["optimizer"] == name
    assert summary["cost"]["grad_evals"] == 6 and summary["cost"]["grad_evals_per_step"] == 1.0
