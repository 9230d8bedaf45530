"""The GPU fast path (issue 13, experiments.fast_path): config keys and their CPU errors, the eager path kept on
CPU, the graphed closure's bookkeeping (on CPU, with each "replay" run eagerly), the launcher presets, and on a
CUDA device (gpu-marked) the graph step against the eager step."""

from __future__ import annotations

import functools
from contextlib import nullcontext

import pytest
import torch
from conftest import CONF, slurm_submission
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate

from experiments import fast_path
from experiments.fast_path import ClosureGraphs, GraphedClosure
from experiments.trainer import Trainer
from rbo.common import frozen_running_stats

# resnet6 has BatchNorm; batch 40 on 96 training images gives batches of 40, 40 and a smaller last one of 16.
BN_RUN = ("model=resnet6", "batch_size=40", "epochs=1", "log_every=1")


def _trainer(cfg) -> Trainer:
    trainer = Trainer(cfg)
    trainer.run()
    return trainer


# ---- config keys ----------------------------------------------------------------------------------------------

def test_fast_path_keys_default_off_and_typed(small_cfg):
    cfg = small_cfg()
    assert (cfg.cuda_graphs, cfg.tf32, cfg.channels_last) == (False, False, False)
    with pytest.raises(ConfigCompositionException, match="cuda_graphs"):
        small_cfg("cuda_graphs=maybe")


@pytest.mark.parametrize("key", fast_path.CUDA_ONLY_KEYS)
@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_cuda_only_key_on_cpu_names_key_value_and_allowed(small_cfg, monkeypatch, key, device):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # auto resolves to cpu
    with pytest.raises(ValueError) as info:
        Trainer(small_cfg(f"{key}=true", f"device={device}"))
    message = str(info.value)
    assert f"{key}=true" in message and f"device={device!r}" in message
    assert f"allowed: {key}=false on cpu" in message


def test_cpu_run_stays_eager_and_strict_fp32(small_cfg):
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True  # as another run might leave them
    trainer = _trainer(small_cfg("optimizer=rbo"))
    assert trainer.graphed_closure is None and not trainer.optimizer._optimizer_step_pre_hooks
    assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32


def test_channels_last_converts_weights_and_keeps_the_numbers(small_cfg):
    plain = _trainer(small_cfg(*BN_RUN, "optimizer=sgd"))
    nhwc = _trainer(small_cfg(*BN_RUN, "optimizer=sgd", "channels_last=true"))
    convs = [p for p in nhwc.model.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[-1] > 1]  # else both
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous() for p in convs)
    for a, b in zip(plain.model.state_dict().values(), nhwc.model.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-5)


# ---- the graphed closure, replays run eagerly (CPU) -----------------------------------------------------------

class EagerGraph:
    """Stands in for a captured graph on the CPU: ``replay`` runs the computation in the BatchNorm mode the
    graph would have been captured in."""

    def __init__(self, graphs: ClosureGraphs, frozen: bool):
        self.graphs, self.frozen = graphs, frozen

    def replay(self) -> None:
        with frozen_running_stats() if self.frozen else nullcontext():
            self.graphs.forward_backward()


class EagerReplay(ClosureGraphs):
    def _warm_up(self) -> None:
        pass

    def _capture(self):
        return EagerGraph(self, frozen=False), EagerGraph(self, frozen=True)


def _install_eager_replay(cfg, model, optimizer):
    graphed = GraphedClosure(functools.partial(EagerReplay, model, loss_scale=cfg.loss_scale, bf16=False,
                                               channels_last=False), batch_size=cfg.batch_size)
    optimizer.register_step_pre_hook(graphed.pre_step)
    return graphed


@pytest.mark.parametrize("optimizer", [
    ("optimizer=rbo", "optimizer.proj_steps=3"),
    ("optimizer=sam",),
    ("optimizer=entropy_sgd", "optimizer.L=2", "optimizer.fresh_batches=true"),  # advance, and the short batch
])
def test_graphed_closure_keeps_the_closure_protocol(small_cfg, monkeypatch, tmp_path, optimizer):
    """Through the real trainer: same parameters, BatchNorm buffers (updated once per step), counters, train loss
    and accuracy as the eager closure; the smaller last batch runs eagerly."""
    eager = _trainer(small_cfg(*BN_RUN, *optimizer))
    monkeypatch.setattr(fast_path, "install", _install_eager_replay)
    graphed = _trainer(small_cfg(*BN_RUN, *optimizer, f"runs_dir={tmp_path / 'graphed'}"))
    assert graphed.graphed_closure.graphs is not None  # the replay path ran
    for (name, a), b in zip(eager.model.state_dict().items(), graphed.model.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6, msg=name)
    counts = ("step", "grad_evals", "diag_evals", "examples")
    assert [graphed.counters[k] for k in counts] == [eager.counters[k] for k in counts]
    for row_eager, row_graphed in zip(eager.metrics, graphed.metrics):
        for key in ("train_loss", "train_acc", "val_loss", "test_acc"):
            assert row_graphed[key] == pytest.approx(row_eager[key], rel=1e-6, nan_ok=True), key
    assert [r["loss"] for r in graphed.steps] == pytest.approx([r["loss"] for r in eager.steps], rel=1e-6)


def test_graphs_wait_for_a_full_batch():
    graphed = GraphedClosure(lambda x, y: pytest.fail("captured from a short batch"), batch_size=8)

    class Short:
        batch = (torch.zeros(3, 2), torch.zeros(3, dtype=torch.int64))

    assert graphed.pre_step(None, (None, Short()), {}) is None and graphed.graphs is None


# ---- launcher presets ---------------------------------------------------------------------------------------

def compose_hydra(*overrides: str, sweep_dir="multirun"):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=["hydra.job.name=train", f"hydra.sweep.dir={sweep_dir}", *overrides],
                       return_hydra_config=True)


def test_local_gpu_preset_runs_jobs_per_gpu_times_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    monkeypatch.delenv(fast_path.JOBS_PER_GPU_ENV, raising=False)
    cfg = compose_hydra("hydra/launcher=local_gpu")
    assert cfg.hydra.launcher._target_ == "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    assert instantiate(cfg.hydra.launcher).joblib["n_jobs"] == 3 * fast_path.DEFAULT_JOBS_PER_GPU
    monkeypatch.setenv(fast_path.JOBS_PER_GPU_ENV, "4")
    assert instantiate(compose_hydra("hydra/launcher=local_gpu").hydra.launcher).joblib["n_jobs"] == 12
    monkeypatch.setenv(fast_path.JOBS_PER_GPU_ENV, "0")
    with pytest.raises(Exception, match=r"RBO_JOBS_PER_GPU='0' is not allowed; allowed: an integer >= 1"):
        instantiate(compose_hydra("hydra/launcher=local_gpu").hydra.launcher)


@pytest.mark.parametrize("num, gpus, device", [(0, 2, "cuda:0"), (5, 2, "cuda:1"), (7, 4, "cuda:3"), (3, 0, "auto")])
def test_rbo_gpu_pins_job_by_number(monkeypatch, num, gpus, device):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    cfg = compose_hydra("hydra/launcher=local_gpu", "device=${rbo_gpu:}", f"hydra.job.num={num}")
    assert cfg.device == "auto"  # outside a job (composition, scripts.plan)
    HydraConfig.instance().set_config(cfg)
    try:
        assert cfg.device == device
    finally:
        HydraConfig.instance().cfg = None


def test_slurm_shared_gpu_preset_asks_for_a_gpu_shard(tmp_path, monkeypatch):
    cfg = compose_hydra("experiment=paper/table1", "hydra/launcher=slurm_shared_gpu", "hydra.launcher.partition=gpu",
                        sweep_dir=tmp_path)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.gres, launcher.gpus_per_node, launcher.max_num_timeout) == ("shard:1", None, 3)
    _, sbatch = slurm_submission(launcher, monkeypatch)
    assert "#SBATCH --gres=shard:1\n" in sbatch and "--partition=gpu" in sbatch and "--gpus-per-node" not in sbatch


# ---- on a CUDA device -----------------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("optimizer", ["rbo", "sam", "entropy_sgd"])
def test_graph_step_equals_eager_step_on_cuda(tmp_path, optimizer):
    from scripts.bench.gpu_check import GRAPH_TOL, compare_graph_with_eager

    result = compare_graph_with_eager(torch.device("cuda"), optimizer, runs_dir=tmp_path)
    assert result["max_param_diff"] <= GRAPH_TOL and result["max_buffer_diff"] <= GRAPH_TOL
    assert result["bn_updates_graph"] == result["bn_updates_eager"] == result["steps"]
    assert result["captured"]  # the graph path ran

