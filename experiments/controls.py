"""Issue 7's ``sgd_effective_lr`` control: SGD at the learning rate RBO effectively used.

RBO reports ``effective_step`` = ‖θ_new − θ‖ / (η‖g‖) every step; η × its run mean is the step per unit
gradient RBO took, i.e. the learning rate of the SGD that would move as far. Read from run records (JSON only,
no torch), so a finished control run is still skipped in well under a second.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from experiments import records


def resolve_effective_lr(cfg: DictConfig) -> None:
    """Fill ``optimizer.lr`` of a ``sgd_effective_lr`` config whose lr is null: the mean, over the completed
    ``optimizer.reference`` runs of the same experiment, dataset and model (every seed), of η × effective_step.
    One lr for all seeds, so the seeds of the control form one group."""
    opt = cfg.optimizer
    if opt.name != "sgd_effective_lr" or opt.lr is not None:
        return
    folder = Path(cfg.runs_dir) / cfg.experiment_name
    measured = []
    for path in sorted(folder.glob("*/summary.json")):
        summary = records.read_summary(path.parent) or {}
        step = (summary.get("diagnostics") or {}).get("effective_step")
        if (summary.get("status") == "completed" and summary.get("optimizer") == opt.reference
                and summary.get("dataset") == cfg.dataset.name and summary.get("model") == cfg.model.name
                and step is not None):
            measured.append(step * summary["hyper"]["lr"])
    if not measured:
        raise ValueError(
            f"optimizer.lr=null: sgd_effective_lr takes its lr from completed optimizer={opt.reference} runs of "
            f"experiment_name={cfg.experiment_name!r} on {cfg.dataset.name}/{cfg.model.name} under {folder}, and "
            f"there are none; run those first (make review runs them in order) or set optimizer.lr")
    opt.lr = sum(measured) / len(measured)
