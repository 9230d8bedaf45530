"""Sweeps on a real SLURM (issue 23): the one-node cluster of ``scripts/slurm/local_cluster.sh`` (``make test-slurm``
starts it, runs these tests and stops it; without a running cluster they are skipped).

Tiny runs (synthetic data, MLP, SGD, 4 epochs) through ``hydra/launcher=slurm`` with the CPU overrides a user gives
on a CPU partition. One module-scoped scenario drives the scheduler the way a cluster treats a sweep and records
what happened; the tests assert on it:

- ``slurm/tiny``: seeds 0-3 as one job array, ``array_parallelism=1``; seed 1 is cancelled (``scancel``) and seed 2
  preempted (``scontrol requeue``), each once its first epoch checkpoint exists; once the queue is empty the sweep
  is launched again. Seeds 1 and 2 are also trained uninterrupted, outside SLURM, for comparison.
- ``slurm/over_time``: one run that never ends within its 3-minute limit, ``max_num_timeout=1``: submitit requeues it
  once at the limit's warning signal (USR2, 75 s before the limit: SLURM sends it up to 30 s early, and the job needs
  time to start training first), then records it failed, and ``scripts.plan --summary`` names it.

The experiment files are written into a temporary folder on Hydra's search path (as in tests/test_sweeps.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pytest
from conftest import CONF, slurm_submission
from hydra import compose, initialize_config_dir
from test_trainer import comparable, read_csv

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "scripts" / "slurm" / "local_cluster.sh"
EPOCHS = 24  # ~0.6 s each on an idle core: a run lasts long enough after its first checkpoint to be interrupted
SEEDS = (0, 1, 2, 3)
CANCELLED, PREEMPTED = 1, 2  # seeds
PARALLELISM = 1  # array_parallelism of slurm/tiny: the node has room for 2 of its jobs at once

pytestmark = pytest.mark.slurm

TINY = f"""\
# @package _global_
# Seeds 0-3 of one short run: {EPOCHS} epochs of 256 steps on synthetic MNIST-shaped data, long enough to interrupt.
experiment_name: slurm/tiny
epochs: {EPOCHS}
batch_size: 32
eval_batch_size: 256
log_every: 100
progress: false
defaults:
  - override /optimizer: sgd
  - override /dataset: synthetic
  - override /model: mlp
  - override /logger: none
dataset:
  synthetic_size: [8192, 256]
  val_size: 64
hydra:
  mode: MULTIRUN
  sweeper:
    params:
      seed: {",".join(map(str, SEEDS))}
"""
# One run that cannot finish in its time limit.
OVER_TIME = TINY.replace("experiment_name: slurm/tiny", "experiment_name: slurm/over_time") \
    .replace(f"epochs: {EPOCHS}", "epochs: 100000").replace("[8192, 256]", "[576, 64]") \
    .replace(f"seed: {','.join(map(str, SEEDS))}", "seed: 0")

# hydra/launcher=slurm as a user runs it on a CPU partition (the preset asks for a GPU and 8 CPUs per run).
CPU_JOBS = ("hydra/launcher=slurm", "hydra.launcher.gpus_per_node=0", "hydra.launcher.cpus_per_task=1",
            "hydra.launcher.mem_gb=1")


# ---- helpers ----------------------------------------------------------------------------------------------

def wait_until(condition, what: str, timeout: float = 300):
    """Poll ``condition()`` until it returns something truthy (returned); fail naming ``what`` after ``timeout`` s
    (a guard against a hung cluster, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(0.1)
    return result


def slurm(*command: str, env: dict) -> str:
    """A SLURM command's output; it must succeed."""
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(command)}: {done.stderr}"
    return done.stdout


def accounting(job: str, env: dict) -> list[dict]:
    """Every run of ``job`` (each task of an array) that SLURM accounted (``sacct --duplicates``: a requeued task's
    earlier runs too), as dicts with ``task`` (array index, 0 for a plain job), ``state``, ``start`` and ``end``."""
    out = slurm("sacct", "-j", job, "--duplicates", "--allocations", "--noheader", "--parsable2",
                "--format=JobID,State,Start,End", env=env)
    rows = []
    for line in out.splitlines():
        job_id, state, start, end = line.split("|")
        rows.append({"task": int(job_id.partition("_")[2] or 0), "state": state, "start": start, "end": end})
    return rows


def most_at_once(rows: list[dict]) -> int:
    """The largest number of runs whose [start, end) intervals overlap (SLURM's second resolution)."""
    spans = [(datetime.fromisoformat(r["start"]), datetime.fromisoformat(r["end"])) for r in rows
             if r["start"] != "Unknown" and r["end"] != "Unknown"]
    return max(sum(start <= s < end for start, end in spans) for s, _ in spans)


def queued(job: str, env: dict) -> list[str]:
    """The queue's tasks of ``job`` (an array, an array task ``<id>_<task>`` or a plain job), one per task."""
    tasks = slurm("squeue", "--noheader", "--array", "--format=%i", env=env).split()
    return [task for task in tasks if task == job or task.startswith(f"{job}_")]


def submitted_job(launcher: tuple[subprocess.Popen, Path], sweep_dir: Path) -> str:
    """The SLURM id of what a launcher submitted into ``sweep_dir``: a job array (submitit's folders
    ``<id>_<task>``), or one job (``<id>``) when the sweep has one run."""
    def submitted() -> list[str]:
        proc, log = launcher
        folders = [p.name for p in (sweep_dir / ".submitit").glob("[0-9]*") if p.is_dir()]
        assert folders or proc.poll() is None, f"the launcher ended without submitting:\n{log.read_text()[-4000:]}"
        return folders
    return wait_until(submitted, f"the jobs of {sweep_dir}")[0].split("_")[0]


def record_of(runs: Path, experiment: str, seed: int) -> Path | None:
    for path in (runs / experiment).glob("*/summary.json"):
        if json.loads(path.read_text())["seed"] == seed:
            return path.parent
    return None


def checkpointed(runs: Path, seed: int) -> Path | None:
    """The record of ``slurm/tiny``'s seed once its first epoch checkpoint exists."""
    record = record_of(runs, "slurm/tiny", seed)
    return record if record is not None and (record / "checkpoint.pt").is_file() else None


def summary(record: Path) -> dict:
    return json.loads((record / "summary.json").read_text())


def finish(launcher: tuple[subprocess.Popen, Path], timeout: float = 600) -> tuple[int, str]:
    """Wait for a launcher ``(process, log file)``: its exit status and output."""
    proc, log = launcher
    return proc.wait(timeout=timeout), log.read_text()


# ---- the cluster and the scenario -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster_env() -> dict:
    """The environment that reaches the local cluster (``SLURM_CONF``), or skip when it is not running."""
    status = subprocess.run([str(CLUSTER), "status"], capture_output=True, text=True)
    if status.returncode != 0:
        pytest.skip(f"no local SLURM cluster is up (`make test-slurm` starts one):\n{status.stdout}")
    slurm_conf = status.stdout.splitlines()[-1].removeprefix("export SLURM_CONF=")
    return {**os.environ, "SLURM_CONF": slurm_conf, "PYTHONPATH": str(REPO), "WANDB_MODE": "disabled",
            "OMP_NUM_THREADS": "1"}  # one thread inside and outside SLURM: the same arithmetic, comparable records


@pytest.fixture(scope="module")
def workdir() -> Path:
    """A temporary folder of this module's own: pytest's tmp_path folders are deleted by the pytest sessions that
    start after this one (it keeps the last 3), and the scenario takes minutes."""
    with tempfile.TemporaryDirectory(prefix="rbo-slurm-test-") as folder:
        yield Path(folder)


@pytest.fixture(scope="module")
def scenario(cluster_env, workdir) -> dict:
    """Runs the module docstring's scenario; returns what each step saw. When a step fails, its jobs are cancelled
    and the launchers still waiting on them killed."""
    launched: list[tuple[subprocess.Popen, Path]] = []
    seen: dict = {}

    def train(*overrides: str) -> tuple[subprocess.Popen, Path]:
        """``python -m experiments.train <overrides>`` from the repository, as a user starts a sweep; its output
        goes to a file (a pipe nobody reads would stall it)."""
        log = workdir / f"launcher{len(launched)}.log"
        with open(log, "w") as out:
            proc = subprocess.Popen([sys.executable, "-m", "experiments.train", *overrides], cwd=REPO,
                                    env=cluster_env, stdout=out, stderr=subprocess.STDOUT)
        launched.append((proc, log))
        return launched[-1]

    try:
        yield run_scenario(train, cluster_env, workdir, seen)
    finally:
        for job in (seen.get("array"), seen.get("over_time_job")):
            if job is not None and queued(job, cluster_env):
                slurm("scancel", job, env=cluster_env)
        for proc, _ in launched:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def run_scenario(train, env: dict, root: Path, seen: dict) -> dict:
    search = root / "conf_extra"
    (search / "experiment" / "slurm").mkdir(parents=True)
    (search / "experiment" / "slurm" / "tiny.yaml").write_text(TINY)
    (search / "experiment" / "slurm" / "over_time.yaml").write_text(OVER_TIME)
    runs = root / "runs"
    common = (f"hydra.searchpath=[file://{search}]", f"runs_dir={runs}")
    seen.update(root=root, runs=runs, common=common)

    over_time = train(*common, "experiment=slurm/over_time", *CPU_JOBS, "hydra.launcher.timeout_min=3",
                      "hydra.launcher.signal_delay_s=75", "hydra.launcher.max_num_timeout=1",
                      f"hydra.sweep.dir={root / 'sweep_over_time'}")
    reference = train(common[0], f"runs_dir={root / 'reference'}", "experiment=slurm/tiny",
                      f"seed={CANCELLED},{PREEMPTED}", f"hydra.sweep.dir={root / 'sweep_reference'}")
    first = train(*common, "experiment=slurm/tiny", *CPU_JOBS, "hydra.launcher.timeout_min=10",
                  f"hydra.launcher.array_parallelism={PARALLELISM}", f"hydra.sweep.dir={root / 'sweep_first'}")
    seen["array"] = array = submitted_job(first, root / "sweep_first")
    seen["over_time_job"] = submitted_job(over_time, root / "sweep_over_time")

    record = wait_until(lambda: checkpointed(runs, CANCELLED), "seed 1's first checkpoint")
    slurm("scancel", f"{array}_{CANCELLED}", env=env)
    wait_until(lambda: not queued(f"{array}_{CANCELLED}", env), "the cancelled task to leave the queue")
    seen["cancelled"] = summary(record)

    wait_until(lambda: checkpointed(runs, PREEMPTED), "seed 2's first checkpoint")
    slurm("scontrol", "requeue", f"{array}_{PREEMPTED}", env=env)
    seen["first"] = finish(first)
    wait_until(lambda: not queued(array, env), "the first sweep's queue to drain", timeout=600)

    seen["again"] = finish(train(*common, "experiment=slurm/tiny", *CPU_JOBS, "hydra.launcher.timeout_min=10",
                                 "hydra.launcher.array_parallelism=4", f"hydra.sweep.dir={root / 'sweep_again'}"))
    seen["reference"] = finish(reference)
    seen["over_time"] = finish(over_time)
    return seen


# ---- the tests ----------------------------------------------------------------------------------------------

def test_sweep_is_one_array_run_at_most_array_parallelism_at_once(scenario, cluster_env):
    rows = accounting(scenario["array"], cluster_env)
    assert {r["task"] for r in rows} == set(range(len(SEEDS)))  # one array: every job of the sweep is a task of it
    assert most_at_once(rows) == PARALLELISM
    rc, output = scenario["again"]
    assert rc == 0, output[-4000:]
    assert all(summary(record_of(scenario["runs"], "slurm/tiny", seed))["status"] == "completed" for seed in SEEDS)


def test_cancelled_and_preempted_runs_end_identical_to_uninterrupted_ones(scenario, cluster_env):
    runs, array = scenario["runs"], scenario["array"]
    # Both were interrupted mid-run: the cancelled one before its end, the preempted one ran twice.
    assert scenario["cancelled"]["status"] == "running" and scenario["cancelled"]["epochs_completed"] < EPOCHS
    states = {(r["task"], r["state"].split()[0]) for r in accounting(array, cluster_env)}
    assert {(CANCELLED, "CANCELLED"), (PREEMPTED, "REQUEUED"), (PREEMPTED, "COMPLETED")} <= states
    rc, output = scenario["first"]
    assert rc != 0 and "CANCELLED" in output, output[-4000:]  # the first launch said a job did not finish

    assert scenario["reference"][0] == 0, scenario["reference"][1][-4000:]
    for seed in (CANCELLED, PREEMPTED):
        record, reference = record_of(runs, "slurm/tiny", seed), record_of(scenario["root"] / "reference",
                                                                           "slurm/tiny", seed)
        assert record.name == reference.name  # the same run id: the same config
        assert len(json.loads((record / "invocations.json").read_text())) == 2  # two jobs trained it
        for name in ("metrics.csv", "steps.csv"):
            assert read_csv(record / name) == read_csv(reference / name), f"seed {seed}: {name}"
        assert comparable(summary(record)) == comparable(summary(reference)), f"seed {seed}: summary.json"
        assert summary(record)["status"] == "completed"


def test_a_run_over_its_time_limit_is_requeued_then_reported(scenario, cluster_env):
    rc, output = scenario["over_time"]
    found = list((scenario["runs"] / "slurm" / "over_time").glob("*/summary.json"))
    assert rc != 0 and len(found) == 1, output[-4000:]
    record = found[0].parent
    states = [r["state"].split()[0] for r in accounting(scenario["over_time_job"], cluster_env)]
    assert states.count("REQUEUED") == 1  # max_num_timeout=1: submitit requeued it once at the warning signal
    assert len(json.loads((record / "invocations.json").read_text())) == 2
    assert summary(record)["status"] == "failed" and "timed-out too many times" in summary(record)["error"]

    plan = subprocess.run([sys.executable, "-m", "scripts.plan", "--summary", "slurm/over_time", "--",
                           *scenario["common"]], cwd=REPO, env=cluster_env, capture_output=True, text=True)
    assert plan.returncode == 1, plan.stdout + plan.stderr
    assert "UNFINISHED slurm/over_time" in plan.stdout and str(record / "summary.json") in plan.stdout


def test_tables_from_the_records(scenario, cluster_env):
    results = scenario["root"] / "results"
    done = subprocess.run(["make", "--no-print-directory", "-o", ".venv/.installed", "tables",
                           f"RUNS={scenario['runs']}", f"RESULTS={results}", "SCOPE=slurm/tiny"],
                          cwd=REPO, env=cluster_env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert list(results.glob("slurm/tiny/table*")), sorted(map(str, results.rglob("*")))


def test_shared_gpu_preset_is_accepted_by_sbatch_test_only(workdir, monkeypatch, cluster_env):
    """The node has a (fake) GPU cut into 4 shards: ``--gres=shard:1`` fits, ``shard:5`` does not."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["hydra/launcher=slurm_shared_gpu", f"hydra.sweep.dir={workdir}"],
                      return_hydra_config=True)
    _, sbatch = slurm_submission(cfg.hydra.launcher, monkeypatch)
    assert "#SBATCH --gres=shard:1\n" in sbatch
    for shards, accepted in ((1, True), (5, False)):
        script = workdir / f"shard{shards}.sh"
        script.write_text(sbatch.replace("--gres=shard:1", f"--gres=shard:{shards}"))
        done = subprocess.run(["sbatch", "--test-only", str(script)], env=cluster_env, capture_output=True, text=True)
        assert (done.returncode == 0) == accepted, done.stderr
        assert ("to start at" in done.stderr) == accepted, done.stderr
