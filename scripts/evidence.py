"""What counts as evidence, and where it is kept (issue 20).

- **Only what the sweeps launch.** A record reaches a table or a verdict when its config is one its experiment's
  sweeps launch: every file under ``conf/experiment/`` with that ``experiment_name``, expanded with Hydra as
  ``make plan`` does (:func:`scripts.plan.sweep_overrides`). Anything else (``make ... ARGS=epochs=20``, a
  hand-edited config) is *ad hoc*: counted in ``index.md``, never read. An ``sgd_effective_lr`` control takes its
  lr from its reference runs, so it is matched with its lr left out (:func:`launch_key`).
- **Committed in compact form.** ``python -m scripts.evidence --runs runs`` copies the finished, launched records
  of the suite's experiments into ``results/records/<experiment>/<run_id>/``: ``config.yaml``, ``summary.json``
  and ``metrics.csv`` (no checkpoints, steps or W&B files), so that a fresh clone rebuilds every table and verdict
  (``make tables figures`` reads ``results/records/`` and then ``runs/``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
from pathlib import Path

import yaml

from experiments import records as run_records
from experiments.config import CONF_DIR
from scripts.records import FINISHED_STATUSES, Records, atomic_write

ROOT = Path(__file__).resolve().parents[1]
EVIDENCE_DIR = ROOT / "results" / "records"
COMPACT_FILES = ("config.yaml", "summary.json", "metrics.csv")  # what a committed record keeps
DERIVED_LR = "sgd_effective_lr"  # its lr is measured on its reference runs at launch time


def experiment_files(conf_dir: Path = CONF_DIR / "experiment") -> dict[str, list[str]]:
    """``experiment_name`` -> the experiment files (``paper/table1``, ``review/controls``, ...) that record under it."""
    files: dict[str, list[str]] = {}
    for path in sorted(Path(conf_dir).rglob("*.yaml")):
        name = (yaml.safe_load(path.read_text()) or {}).get("experiment_name")
        if name:
            files.setdefault(str(name), []).append(path.relative_to(conf_dir).with_suffix("").as_posix())
    return files


def launch_key(config: dict) -> str:
    """The run_id of ``config``, with the lr of an ``sgd_effective_lr`` control left out (it is measured)."""
    optimizer = config.get("optimizer") or {}
    if optimizer.get("name") == DERIVED_LR:
        config = {**config, "optimizer": {**optimizer, "lr": None}}
    return run_records.run_id(config)


def _conf_version() -> str:
    """A hash of what decides the launched configs: every file under ``conf/`` and the config schema."""
    digest = hashlib.sha256()
    for path in sorted(CONF_DIR.rglob("*.yaml")) + [ROOT / "experiments" / "config.py",
                                                    ROOT / "experiments" / "records.py"]:
        if path.is_file():
            digest.update(path.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _cache_path() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rbo-bench" / "launched.json"


def launched(names) -> dict[str, set[str]]:
    """``experiment_name`` -> the :func:`launch_key` of every job its sweeps launch, for each name with experiment
    files (cached per :func:`_conf_version`, since composing every sweep takes seconds)."""
    from hydra import initialize_config_dir

    from scripts.plan import compose_jobs, sweep_overrides

    version, path = _conf_version(), _cache_path()
    try:
        cache = json.loads(path.read_text())
        cache = cache if cache.get("version") == version else {}
    except (OSError, ValueError):
        cache = {}
    found, files = {}, experiment_files()
    for name in sorted(set(names) & set(files)):
        if name not in cache.get("keys", {}):
            keys = set()
            with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
                for experiment in files[name]:
                    for cfg in compose_jobs(sweep_overrides(experiment, [])):
                        keys.add(launch_key(run_records.to_container(cfg)))
            cache.setdefault("keys", {})[name] = sorted(keys)
        found[name] = set(cache["keys"][name])
    try:
        run_records.write_json(path, {"version": version, "keys": cache.get("keys", {})})
    except OSError:  # a read-only home: composed again next time
        pass
    return found


def only_launched(records: Records, keys: dict[str, set[str]]) -> Records:
    """The records whose config one of their experiment's sweeps launches; the others counted in ``ad_hoc``.
    Experiments without experiment files (a test's, an ad-hoc sweep named on purpose) are kept whole."""
    if not len(records.runs):
        return records
    launched_run = [name not in keys or launch_key(config) in keys[name]
                    for name, config in zip(records.runs["experiment"], records.runs["config"])]
    mask = records.runs.index.isin(records.runs.index[launched_run])
    ad_hoc = records.runs.loc[~mask, "experiment"].value_counts().to_dict()
    return records.keep(mask, ad_hoc={**records.ad_hoc, **ad_hoc})


def commit(records: Records, into: Path = EVIDENCE_DIR) -> list[Path]:
    """Copy the finished records among ``records`` (already :func:`only_launched`) into ``into`` in compact form
    (:data:`COMPACT_FILES`), each file atomically; returns the record folders written or refreshed."""
    written = []
    for run in records.runs.itertuples():
        if run.status not in FINISHED_STATUSES:
            continue
        source, target = Path(run.path), Path(into) / run.experiment / run.run_id
        if source.resolve() == target.resolve():
            continue
        for name in COMPACT_FILES:
            if (source / name).is_file():
                atomic_write(target / name, lambda tmp, src=source / name: shutil.copyfile(src, tmp))
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs", help="run records to commit from (default: runs)")
    parser.add_argument("--into", default=str(EVIDENCE_DIR), help="the committed evidence (default: results/records)")
    args = parser.parse_args(argv)
    from scripts.records import load_records

    records = load_records(args.runs).select(sorted(experiment_files()))
    records = only_launched(records, launched(set(records.runs["experiment"]) if len(records.runs) else ()))
    written = commit(records, Path(args.into))
    print(records.describe())
    size = sum(f.stat().st_size for f in Path(args.into).rglob("*") if f.is_file()) if Path(args.into).is_dir() else 0
    print(f"committed {len(written)} records into {args.into} ({size / 2 ** 20:.1f} MiB in all there)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
