"""scripts.claims, the reviewers' four questions (issue 15): each rule on hand-written run records."""

from __future__ import annotations

from test_aggregate import RBO_HYPER, every_record_launched  # noqa: F401 (an autouse fixture)
from test_claims import REAL, claims_of, write_group

from scripts.claims import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED

TUNED, COMPUTE, INNER, LOSS_SCALE = range(8, 12)
FASHION = {"dataset": "fashion_mnist"}


def write_tuned(root, rbo_acc, baseline_acc, *, seeds=3, optimizers=("sgd_momentum", "sam_momentum", "adamw")):
    """review/tuned on one row: RBO at its paper setting; each tuned baseline at two learning rates, the one with
    the better validation accuracy at ``baseline_acc`` test, a decoy with 10 pp more test accuracy but a worse
    validation accuracy (selecting on test would pick it)."""
    common = {"experiment": "review/tuned", "seeds": seeds, **FASHION}
    write_group(root, "rbo", rbo_acc, hyper=RBO_HYPER, evals_per_step=100, **common)
    for optimizer in optimizers:
        write_group(root, optimizer, baseline_acc, val=0.80, hyper={"lr": 0.01}, **common)
        write_group(root, optimizer, baseline_acc + 0.10, val=0.60, hyper={"lr": 0.1}, **common)


def test_tuned_baselines_rbo_leads_when_they_lose(tmp_path):
    write_tuned(tmp_path, 0.90, 0.85)
    claim = claims_of(tmp_path)[TUNED]
    assert claim.verdict == f"{SUPPORTED} ({REAL})"
    line = claim.primary.lines[0]
    assert line.endswith("→ lead (sgd_momentum [lr=0.01] selected on validation accuracy (80.00 %) among 2 settings; "
                         "sam_momentum [lr=0.01] selected on validation accuracy (80.00 %) among 2 settings; adamw "
                         "[lr=0.01] selected on validation accuracy (80.00 %) among 2 settings)")


def test_tuned_baseline_that_wins(tmp_path):
    write_tuned(tmp_path, 0.85, 0.90)
    claim = claims_of(tmp_path)[TUNED]
    assert claim.verdict == f"{NOT_SUPPORTED} ({REAL})" and "→ behind" in claim.primary.lines[0]


def test_tuned_baseline_tied_within_noise(tmp_path):
    write_tuned(tmp_path, 0.853, 0.85)
    claim = claims_of(tmp_path)[TUNED]
    assert claim.verdict == f"{NOT_SUPPORTED} ({REAL})"
    assert "(1 ties, 0 behind, 0 undecided)" in claim.primary.summary
    assert "+0.30 pp, p = " in claim.primary.lines[0] and "90 % CI [-0.05, +0.65], tie" in claim.primary.lines[0]


def test_tuned_baselines_with_too_few_seeds_or_a_missing_one(tmp_path):
    write_tuned(tmp_path / "two", 0.90, 0.85, seeds=2)
    claim = claims_of(tmp_path / "two")[TUNED]
    assert claim.verdict == f"{INCONCLUSIVE} ({REAL})" and "has 2 finished seeds (need 3)" in claim.primary.lines[0]
    write_tuned(tmp_path / "no_adamw", 0.90, 0.85, optimizers=("sgd_momentum", "sam_momentum"))
    claim = claims_of(tmp_path / "no_adamw")[TUNED]
    assert claim.verdict == f"{INCONCLUSIVE} ({REAL})" and "no adamw runs" in claim.primary.lines[0]
    write_tuned(tmp_path / "no_adamw_loss", 0.85, 0.90, optimizers=("sgd_momentum", "sam_momentum"))
    assert claims_of(tmp_path / "no_adamw_loss")[TUNED].verdict == f"{NOT_SUPPORTED} ({REAL})"


def write_compute_matched(root, rbo_acc, *, rbo_final=None, seeds=3):
    """review/compute_matched: every optimizer configured alike (10 epochs, a budget of 10 SGD epochs = 100
    evaluations at 10 minibatches per epoch): SGD 80 % at its end (the budget), SAM (2 evaluations per step) 82 %
    at the budget, RBO (10 per step) ``rbo_acc`` at the budget and ``rbo_final`` (default: the same) at its end."""
    common = {"experiment": "review/compute_matched", "seeds": seeds, "config": {"max_sgd_epochs": 10}, **FASHION}
    write_group(root, "sgd", 0.80, **common)
    write_group(root, "sam", 0.90, evals_per_step=2, budget_rows=[(10, 0.82)], **common)
    write_group(root, "rbo", rbo_final or rbo_acc, evals_per_step=10, hyper=RBO_HYPER,
                budget_rows=[(10, rbo_acc)], **common)


def test_compute_matched(tmp_path):
    write_compute_matched(tmp_path / "ahead", 0.86)
    claim = claims_of(tmp_path / "ahead")[COMPUTE]
    assert claim.verdict == f"{SUPPORTED} ({REAL})"
    assert "rbo at 100 evals 86.00 ± 0.00 %" in claim.primary.lines[0]
    write_compute_matched(tmp_path / "behind", 0.78)
    assert claims_of(tmp_path / "behind")[COMPUTE].verdict == f"{NOT_SUPPORTED} ({REAL})"
    write_compute_matched(tmp_path / "few", 0.86, seeds=2)
    assert claims_of(tmp_path / "few")[COMPUTE].verdict == f"{INCONCLUSIVE} ({REAL})"


def test_compute_matched_reads_rbo_at_the_budget_not_at_its_end(tmp_path):
    """RBO trained to 95 % at its end; at the budget of 100 evaluations it had 52.5 %."""
    write_compute_matched(tmp_path, 0.525, rbo_final=0.95)
    claim = claims_of(tmp_path)[COMPUTE]
    assert claim.verdict == f"{NOT_SUPPORTED} ({REAL})" and "rbo at 100 evals 52.50 ± 0.00 %" in claim.primary.lines[0]


def write_inner_solver(root, newton_acc, *, projection="newton", budget_rows=(), seeds=3):
    """review/inner_solver: RBO with a converged projection, the authors' RBO, SGD at two learning rates (lr 0.1:
    the better validation accuracy, 84 % test; lr 0.01: the decoy, 95 % test)."""
    common = {"experiment": "review/inner_solver", "seeds": seeds, **FASHION}
    optimizer = "rbo" if projection == "newton" else "rbo_gauss_newton"
    write_group(root, optimizer, newton_acc, evals_per_step=100, budget_rows=budget_rows,
                hyper={**RBO_HYPER, "projection": projection, "proj_steps": 20}, **common)
    write_group(root, "rbo", 0.86, evals_per_step=100, hyper=RBO_HYPER, **common)
    write_group(root, "sgd", 0.84, val=0.80, hyper={"lr": 0.1}, **common)
    write_group(root, "sgd", 0.95, val=0.60, hyper={"lr": 0.01}, **common)


def test_inner_solver_converged_rbo_against_sgd_at_its_best_validation_lr(tmp_path):
    write_inner_solver(tmp_path / "ahead", 0.90)
    claim = claims_of(tmp_path / "ahead")[INNER]
    assert claim.verdict == f"{SUPPORTED} ({REAL})"
    line = claim.primary.lines[0]
    assert "at equal epochs (the records hold no RBO evaluation after init within SGD's budget)" in line
    assert "against the authors' RBO at equal epochs rbo [" in line and "+4.00 pp, p = " in line
    write_inner_solver(tmp_path / "behind", 0.80, projection="gauss_newton")
    claim = claims_of(tmp_path / "behind")[INNER]
    assert claim.verdict == f"{NOT_SUPPORTED} ({REAL})" and "rbo_gauss_newton" in claim.primary.lines[0]
    write_inner_solver(tmp_path / "few", 0.90, seeds=2)
    assert claims_of(tmp_path / "few")[INNER].verdict == f"{INCONCLUSIVE} ({REAL})"


def test_inner_solver_at_equal_compute_when_the_records_allow(tmp_path):
    """A budget row after one RBO step (100 evaluations, SGD's whole budget): the comparison is made there."""
    write_inner_solver(tmp_path, 0.90, budget_rows=[(10, 0.70)])
    claim = claims_of(tmp_path)[INNER]
    assert claim.verdict == f"{NOT_SUPPORTED} ({REAL})"
    assert "at SGD's gradient-evaluation budget: rbo [" in claim.primary.lines[0]


def write_loss_scale(root, rbo_acc: dict, *, seeds=3, sam_acc=0.85):
    """review/loss_scale: SGD 80 %, SAM ``sam_acc``, RBO ``rbo_acc[scale]`` at loss scales 1 and 10."""
    for scale in (1.0, 10.0):
        common = {"experiment": "review/loss_scale", "seeds": seeds, "config": {"loss_scale": scale}, **FASHION}
        write_group(root, "sgd", 0.80, **common)
        write_group(root, "sam", sam_acc, **common)
        write_group(root, "rbo", rbo_acc[scale], hyper=RBO_HYPER, **common)


def test_loss_scale_ranking(tmp_path):
    write_loss_scale(tmp_path / "same", {1.0: 0.90, 10.0: 0.91})
    claim = claims_of(tmp_path / "same")[LOSS_SCALE]
    assert claim.verdict == f"{SUPPORTED} ({REAL})" and "on 0 of 2 pairs compared" in claim.primary.summary
    write_loss_scale(tmp_path / "flip", {1.0: 0.90, 10.0: 0.82})  # ahead of SAM at 1, behind it at 10
    claim = claims_of(tmp_path / "flip")[LOSS_SCALE]
    assert claim.verdict == f"{NOT_SUPPORTED} ({REAL})"
    assert claim.primary.lines[1].endswith("→ ranking changed beyond noise")


def test_loss_scale_change_within_noise_and_too_few_seeds(tmp_path):
    """Ahead of SAM by 0.6 pp at scale 1, a 0.4 pp tie at 10: the outcome differs but the difference moved 0.2 pp,
    within noise."""
    write_loss_scale(tmp_path / "noise", {1.0: 0.856, 10.0: 0.854})
    claim = claims_of(tmp_path / "noise")[LOSS_SCALE]
    assert claim.verdict == f"{SUPPORTED} ({REAL})" and "ahead; then rbo" in claim.primary.lines[1]
    write_loss_scale(tmp_path / "few", {1.0: 0.90, 10.0: 0.82}, seeds=2)
    assert claims_of(tmp_path / "few")[LOSS_SCALE].verdict == f"{INCONCLUSIVE} ({REAL})"
