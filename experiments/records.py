"""Run records: ``<runs_dir>/<experiment>/<run_id>/`` (format: README.md, "Run records").

Everything here is written atomically (a temporary file in the same folder, then ``os.replace``), so a run
killed at any instant leaves either the previous or the new version of each file, never a torn one.
This module imports torch only inside the functions that need it: deciding whether a run is already
finished (:func:`finished_status`) must stay cheap.
"""

from __future__ import annotations

import csv
import fcntl
import functools
import hashlib
import io
import json
import math
import os
import platform
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from omegaconf import OmegaConf

from experiments.config import ADDED_KEYS, OUTPUT_ONLY_KEYS, without_registry_keys
from experiments.errors import Refusal

FINISHED = ("completed", "diverged")  # a rerun of these is skipped; running/failed ones resume
METRICS_COLUMNS = ("epoch", "trigger", "step", "grad_evals", "examples", "train_seconds", "lr", "train_loss",
                   "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "budget_sgd_epochs")
STEPS_COLUMNS = ("step", "epoch", "grad_evals", "loss")
WALL_CLOCK_COLUMNS = ("train_seconds",)  # the only columns that differ between identical runs
FINAL_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc")
SOURCE_PACKAGES = ("rbo", "baselines", "experiments")  # the Python source that computes a run's numbers
RECORD_FILES = ("config.yaml", "metrics.csv", "steps.csv", "summary.json", "checkpoint.pt", "invocations.json",
                ".wandb")
HEAD_BYTES = 1 << 20  # a data file's fingerprint hashes its first MiB


ACCURACY_KEYS = ("train_acc", "val_acc", "test_acc")
LOSS_KEYS = ("train_loss", "val_loss", "test_loss")
COST_COUNTERS = ("grad_evals", "diag_evals", "examples", "train_seconds", "warmup_seconds")


class RecordLocked(Refusal):
    """Another live process trains this record."""


class CheckpointMismatch(Refusal):
    """The record's checkpoint belongs to another run_id."""


class CheckpointNotWritten(Refusal):
    """The disk refused an epoch's checkpoint (full, I/O error): the previous one is kept."""


# ---- identity -----------------------------------------------------------------------------------------------

def to_container(cfg: Any) -> dict:
    """The resolved config as plain Python containers (what is hashed, saved and logged)."""
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)


def run_id(config: dict) -> str:
    """12 hex digits of the sha256 of the resolved config without :data:`OUTPUT_ONLY_KEYS` and the optimizer's
    registry keys (:data:`experiments.config.REGISTRY_KEYS`), and without each of :data:`ADDED_KEYS` that holds the
    value runs had before it existed."""
    identity = {k: v for k, v in without_registry_keys(config).items() if k not in OUTPUT_ONLY_KEYS}
    for key, before in ADDED_KEYS.items():
        *parents, leaf = key.split(".")
        node = identity
        for parent in parents:  # copy the path down to the key: the caller's config stays as it was
            if not isinstance(node.get(parent), dict):
                break
            node[parent] = dict(node[parent])
            node = node[parent]
        else:
            if leaf in node and node[leaf] == before:
                del node[leaf]
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]


def run_dir(config: dict) -> Path:
    return Path(config["runs_dir"]) / config["experiment_name"] / run_id(config)


def read_summary(directory: Path) -> dict | None:
    """``summary.json`` of a record, or None if it is absent or unreadable."""
    try:
        return json.loads((Path(directory) / "summary.json").read_text())
    except (OSError, ValueError):
        return None


def finished_status(directory: Path) -> str | None:
    """``completed`` or ``diverged`` if the record says so (such a run is not run again), else None."""
    status = (read_summary(directory) or {}).get("status")
    return status if status in FINISHED else None


@functools.cache
def source_sha256() -> str:
    """sha256 of every ``*.py`` file of :data:`SOURCE_PACKAGES` (paths and contents): the code version a skip
    compares, cheap (no git, works in an installed copy too). Once per process: every job of a multirun runs the
    code its process loaded, so a file edited mid-sweep must not reach the later jobs' records."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for package in SOURCE_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(f"{path.relative_to(root).as_posix()}\0".encode() + path.read_bytes() + b"\0")
    return digest.hexdigest()


def data_fingerprint(paths: list[Path]) -> dict[str, dict | None]:
    """Per data file (absolute path): ``size``, ``mtime_ns`` and ``head_sha256`` (sha256 of the first
    :data:`HEAD_BYTES`); None for a file that is not there. Cheap: no file is read past its first MiB."""
    found = {}
    for path in map(Path, paths):
        try:
            stat = path.stat()
            with open(path, "rb") as f:
                head = hashlib.sha256(f.read(HEAD_BYTES)).hexdigest()
        except OSError:
            found[str(path)] = None
            continue
        found[str(path)] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "head_sha256": head}
    return found


def identity_changes(summary: dict) -> list[str]:
    """What differs between a record and this checkout: the code (:func:`source_sha256`) and the data files the
    run read (:func:`data_fingerprint` of the same paths). Records written before these keys existed: []."""
    changes = []
    recorded = summary.get("source_sha256")
    if recorded is not None and recorded != (current := source_sha256()):
        changes.append(f"code changed (source sha256 {recorded[:12]} -> {current[:12]}, "
                       f"recorded commit {summary.get('git_commit')}, now {git_commit()})")
    files = summary.get("data_fingerprint") or {}
    now_files = data_fingerprint(list(files))
    changed = [path for path, stat in files.items() if now_files[path] != stat]
    if changed:
        changes.append(f"data changed ({', '.join(changed)}: size, mtime or first MiB differ, or gone)")
    return changes


def summary_problems(summary: dict) -> list[str]:
    """What no run can have written into its ``summary.json``: a final accuracy outside [0, 1], a negative final
    loss, a negative cost counter or ``epochs_completed`` (null, for a value not measured, is allowed). One
    entry per value, ``key value (allowed: ...)``; [] for a plausible summary. The writing side
    (:func:`skip_decision`) retrains such a record; a reader of records can refuse to average it."""
    final, cost = summary.get("final"), summary.get("cost")
    if not isinstance(final, dict) or not isinstance(cost, dict):
        return [f"final {final!r}, cost {cost!r} (allowed: the summary's final and cost tables)"]
    checks = [*((f"final {k}", final.get(k), 0, 1) for k in ACCURACY_KEYS),
              *((f"final {k}", final.get(k), 0, math.inf) for k in LOSS_KEYS),
              *((f"cost {k}", cost.get(k), 0, math.inf) for k in COST_COUNTERS),
              ("epochs_completed", summary.get("epochs_completed"), 0, math.inf)]
    return [f"{key} {value!r} (allowed: {'[0, 1]' if high == 1 else 'a number >= 0'})" for key, value, low, high
            in checks if value is not None and not (isinstance(value, int | float) and low <= value <= high)]


class Decision(NamedTuple):
    """What :func:`skip_decision` decided for a record: ``skip`` it, or train it after moving its files into
    ``.<aside>-<time>/`` (:func:`set_aside`) when ``aside`` names why; ``message`` says so (None: nothing to say)."""

    skip: bool
    message: str | None
    aside: str | None = None


def skip_decision(directory: Path, on_change: str, config: dict) -> Decision:
    """Whether to skip or train the record of ``config`` in ``directory``. A finished record is skipped, unless
    its code or data changed and ``on_change=rerun`` (set aside as ``replaced``, trained again), or its summary
    is damaged (:func:`summary_problems`: set aside as ``damaged``, trained again). A finished record without
    ``config.yaml`` gets it back, written from ``config`` (the run_id's config), and the skip says so."""
    summary = read_summary(directory) or {}
    status = summary.get("status")
    if status not in FINISHED:
        return Decision(False, None)
    problems = summary_problems(summary)
    if problems:
        return Decision(False, f"damaged: {directory} says {status} but its summary.json holds "
                               f"{'; '.join(problems)}; its files go to a hidden .damaged-<time>/ folder there and "
                               "the run is trained again", aside="damaged")
    changes = identity_changes(summary)
    if changes and on_change == "rerun":
        return Decision(False, f"rerun: {directory} {status} ({'; '.join(changes)}); on_change=rerun trains it again",
                        aside="replaced")
    message = f"skip: {directory} {status}"
    if changes:
        message += f" ({'; '.join(changes)}); kept, as on_change=keep says; on_change=rerun trains it again"
    if not (Path(directory) / "config.yaml").is_file():
        write_yaml(Path(directory) / "config.yaml", config)
        message += f"; config.yaml was missing: restored from this run's config (run_id {run_id(config)})"
    return Decision(True, message)


def set_aside(directory: Path, files: tuple[str, ...], why: str) -> Path:
    """Move ``files`` of a record into ``<directory>/.<why>-<time>/`` (hidden: the tables do not read it) so
    that nothing written earlier is lost; returns that folder."""
    folder = Path(directory) / f".{why}-{stamp()}"
    folder.mkdir()
    for name in files:
        if (Path(directory) / name).exists():
            os.replace(Path(directory) / name, folder / name)
    return folder


@contextmanager
def record_lock(directory: Path) -> Iterator[None]:
    """Hold ``<directory>/.lock`` (``fcntl.flock``, exclusive) while training: the OS releases it when the
    process ends, however it ends (kill -9, SLURM requeue). A second process gets :class:`RecordLocked` at once,
    naming the holder (pid, host, start time, written into the lock file)."""
    path = Path(directory) / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = path.read_text().strip() or "a process that has not written its name yet"
        os.close(fd)
        raise RecordLocked(f"{directory} is being trained by {holder}; this launch stops here (the record has "
                           "one owner; rerun once that process has ended)") from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {now()}\n".encode())
        yield
    finally:
        os.ftruncate(fd, 0)
        os.close(fd)  # releases the lock


# ---- atomic writes -------------------------------------------------------------------------------------------

def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, fsync it, then ``os.replace`` it onto ``path``:
    a reader sees the old file or the new one, never a torn one. Every file the suite writes goes through here."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_atomic(path: Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def json_safe(value: Any) -> Any:
    """NaN and ±inf become None (null), tuples lists: what a JSON round trip gives, strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, (json.dumps(json_safe(obj), indent=2, allow_nan=False) + "\n").encode())


def write_yaml(path: Path, config: dict) -> None:
    write_atomic(path, OmegaConf.to_yaml(OmegaConf.create(config)).encode())


def columns(rows: list[dict], leading: tuple[str, ...]) -> list[str]:
    """``leading`` first, then every other key of ``rows`` (the ``diag_*`` columns) sorted."""
    extra = sorted({k for row in rows for k in row} - set(leading))
    return [*leading, *extra]


def write_csv(path: Path, rows: list[dict], leading: tuple[str, ...]) -> None:
    """A tidy CSV; a key missing from a row is written as ``nan``. Floats keep full precision (repr)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns(rows, leading), restval="nan", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buf.getvalue().encode())


def save_checkpoint(path: Path, state: dict) -> None:
    """``torch.save`` to memory, then an atomic write. ``state`` holds only tensors and primitive containers,
    so :func:`load_checkpoint` can use ``weights_only=True``."""
    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    write_atomic(path, buf.getvalue())


def load_checkpoint(path: Path, device: Any) -> dict:
    import torch

    return torch.load(path, map_location=device, weights_only=True)


CHECKPOINT_KEYS = ("run_id", "epoch", "started_at", "counters", "metrics", "steps", "diag_sum", "diag_count",
                   "model", "optimizer", "scheduler", "rng")


def resume_state(directory: Path, run_id: str, device: Any) -> dict | None:
    """The record's ``checkpoint.pt`` to resume from, or None (none there, or an unreadable one: moved aside to
    ``checkpoint.pt.corrupt-<time>``, said on stdout, the run restarts from scratch). A readable checkpoint of
    another run_id raises :class:`CheckpointMismatch` and nothing is touched."""
    path = Path(directory) / "checkpoint.pt"
    if not path.is_file():
        return None
    try:
        state = load_checkpoint(path, device)
        if not isinstance(state, dict) or not set(CHECKPOINT_KEYS) <= set(state):
            raise ValueError(f"keys {sorted(state) if isinstance(state, dict) else type(state).__name__}")
    except Exception as err:  # truncated zip, unpickling, a foreign file: all mean "cannot resume from this"
        aside = path.with_name(f"checkpoint.pt.corrupt-{stamp()}")
        os.replace(path, aside)
        print(f"resume: {path} is unreadable ({type(err).__name__}: {' '.join(str(err).split())[:200]}); "
              f"moved to {aside.name}, training {directory} from scratch")
        return None
    if state["run_id"] != run_id:
        raise CheckpointMismatch(
            f"{path} belongs to run_id {state['run_id']}, not {run_id} (the record's folder); refusing to resume "
            "from it and leaving the record untouched: move the checkpoint back to its own record, or delete it")
    return state


# ---- environment and summary -------------------------------------------------------------------------------

def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def stamp() -> str:
    """The current UTC time for a file name (microseconds: two in one second stay distinct)."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


@functools.cache
def git_commit() -> str | None:
    """HEAD of the repository this package lives in, with ``-dirty`` if tracked files changed; None outside git.
    Once per process, as :func:`source_sha256`."""
    repo = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                              timeout=10).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        return commit + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: Any) -> dict:
    """``versions``, ``git_commit`` (``-dirty``: tracked files changed), ``device`` and ``hardware`` (GPU name,
    else CPU model and threads)."""
    import torch

    if device.type == "cuda":
        hardware = torch.cuda.get_device_name(device)
    else:
        hardware = f"{cpu_name()} ({torch.get_num_threads()} threads)"
    return {
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "torchvision": _version("torchvision"), "rbo_bench": _version("rbo-bench")},
        "git_commit": git_commit(), "device": str(device), "hardware": hardware,
    }


def build_summary(config: dict, *, status: str, metrics: list[dict], counters: dict, diagnostics: dict,
                  env: dict, started_at: str, error: str | None = None,
                  diverged_at_epoch: float | None = None, finished_at: str | None = None) -> dict:
    """``summary.json``. ``final`` comes from the last init/epoch row of ``metrics`` (for a diverged run: the
    last evaluation before the divergence); ``counters`` holds step, grad_evals, diag_evals, examples,
    train_seconds and warmup_seconds."""
    rows = [r for r in metrics if r["trigger"] != "budget"]
    last = rows[-1] if rows else {}
    epochs_completed = float(last.get("epoch", 0.0))
    steps = counters["step"]
    return {
        "run_id": run_id(config), "experiment": config["experiment_name"], "status": status,
        "epochs": config["epochs"], "epochs_completed": epochs_completed,
        "optimizer": config["optimizer"]["name"], "dataset": config["dataset"]["name"],
        "model": config["model"]["name"], "seed": config["seed"], "hyper": without_registry_keys(config)["optimizer"],
        "final": {k: last.get(k, math.nan) for k in FINAL_KEYS},
        "cost": {
            "grad_evals": counters["grad_evals"], "diag_evals": counters["diag_evals"],
            "examples": counters["examples"], "train_seconds": counters["train_seconds"],
            "warmup_seconds": counters.get("warmup_seconds", 0.0),  # the first steps, kept out of train_seconds
            "seconds_per_epoch": counters["train_seconds"] / epochs_completed if epochs_completed else None,
            "grad_evals_per_step": counters["grad_evals"] / steps if steps else None,
        },
        "diagnostics": diagnostics, "error": error, "diverged_at_epoch": diverged_at_epoch,
        **env, "started_at": started_at, "finished_at": finished_at,
    }
