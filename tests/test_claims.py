"""scripts.claims: hand-written run records give the expected verdicts in results/claims.md."""

from __future__ import annotations

import pytest
from test_aggregate import RBO_HYPER, write_heatmap, write_run

from scripts import aggregate
from scripts.claims import NOT_SUPPORTED, NOT_TESTED, SUPPORTED, evaluate_claims, reproduce_command

ROWS = (("mnist", "mlp"), ("mnist", "resnet6"), ("mnist", "vgg9"), ("cifar10", "resnet8"), ("cifar10", "vgg9"),
        ("cifar100", "resnet8"), ("cifar100", "vgg9"))
BEATS, FASTER, HEATMAP, CONTROL, STABLE, LIMIT = range(6)


def write_table1(root, rbo_wins: int, experiment="paper/table1", rows=ROWS):
    """The four paper optimizers on each row, 1 seed; RBO has the best accuracy on the first ``rbo_wins`` rows
    and reaches a training loss of 0.05 where the baselines end at 0.5."""
    for i, (dataset, model) in enumerate(rows):
        for optimizer, acc in (("sgd", 0.80), ("entropy_sgd", 0.82), ("sam", 0.85)):
            write_run(root, experiment=experiment, optimizer=optimizer, dataset=dataset, model=model, final_acc=acc)
        write_run(root, experiment=experiment, optimizer="rbo", dataset=dataset, model=model, hyper=RBO_HYPER,
                  final_acc=0.90 if i < rbo_wins else 0.84, final_loss=0.05, evals_per_step=100)


def claims_of(root):
    agg = aggregate.build(root)
    return evaluate_claims(agg.groups, agg.curves, agg.heatmaps)


def test_rbo_best_on_5_of_7_rows_is_supported_and_faster_per_epoch(tmp_path):
    write_table1(tmp_path, rbo_wins=5)
    claims = claims_of(tmp_path)
    assert claims[BEATS].verdict == SUPPORTED
    assert claims[BEATS].primary.summary == "RBO best on 5 of 7 rows"
    assert claims[FASTER].verdict == SUPPORTED  # loss 0.5 reached at epoch 4 of 10: ratio 0.4
    for i in (HEATMAP, CONTROL, STABLE, LIMIT):
        assert claims[i].verdict == NOT_TESTED


def test_rbo_best_on_4_of_7_rows_is_not_supported(tmp_path):
    write_table1(tmp_path, rbo_wins=4)
    assert claims_of(tmp_path)[BEATS].verdict == NOT_SUPPORTED


def test_cpu_scale_evidence_is_flagged_and_full_scale_is_preferred(tmp_path):
    quick = [("mnist_subset", "mlp"), ("synthetic", "mlp")]
    write_table1(tmp_path, rbo_wins=2, experiment="quick/table1", rows=quick)
    assert claims_of(tmp_path)[BEATS].verdict == f"{SUPPORTED} (CPU-scale evidence)"
    write_table1(tmp_path, rbo_wins=0, experiment="paper/table1", rows=ROWS[:1])
    claim = claims_of(tmp_path)[BEATS]
    assert claim.verdict == NOT_SUPPORTED and claim.primary.experiment == "paper/table1"
    assert {item.experiment for item in claim.items} == {"quick/table1", "paper/table1"}


def write_controls(root, rbo_acc, zero_acc, gd_acc):
    """rbo, rbo_radius0 and sgd_effective_lr over 3 seeds on mnist_subset/mlp (seed spread ±0.2 pp)."""
    for seed, jitter in enumerate((-0.002, 0.0, 0.002)):
        common = {"experiment": "quick/controls", "dataset": "mnist_subset", "seed": seed}
        write_run(root, optimizer="rbo", hyper=RBO_HYPER, final_acc=rbo_acc + jitter, **common)
        write_run(root, optimizer="rbo_radius0", hyper={**RBO_HYPER, "radius": 0.0}, final_acc=zero_acc + jitter,
                  **common)
        write_run(root, optimizer="sgd_effective_lr", hyper={"lr": 0.1}, final_acc=gd_acc + jitter, **common)


def test_radius_control_and_zero_radius_limit(tmp_path):
    write_controls(tmp_path / "same", rbo_acc=0.806, zero_acc=0.810, gd_acc=0.805)
    claims = claims_of(tmp_path / "same")
    assert claims[CONTROL].verdict == f"{NOT_SUPPORTED} (CPU-scale evidence)"
    assert "diff -0.40 pp" in claims[CONTROL].primary.lines[0]
    assert claims[LIMIT].verdict == f"{SUPPORTED} (CPU-scale evidence)"
    write_controls(tmp_path / "ball", rbo_acc=0.85, zero_acc=0.80, gd_acc=0.70)
    claims = claims_of(tmp_path / "ball")
    assert claims[CONTROL].verdict == f"{SUPPORTED} (CPU-scale evidence)"
    assert claims[LIMIT].verdict == f"{NOT_SUPPORTED} (CPU-scale evidence)"


def test_heatmap_claims(tmp_path):
    write_heatmap(tmp_path)  # spread over ρ at η = 1 is 1 pp (not > 1 pp); ρ = 2, η = 10 diverged
    claims = claims_of(tmp_path)
    assert claims[HEATMAP].verdict == NOT_SUPPORTED
    assert claims[STABLE].verdict == NOT_SUPPORTED
    assert "1 of 2 runs diverged" in claims[STABLE].primary.summary


def test_claims_md_from_the_cli(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "results"
    write_controls(runs, rbo_acc=0.806, zero_acc=0.810, gd_acc=0.805)
    aggregate.main(["--runs", str(runs), "--out", str(out)])
    text = (out / "claims.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("| ")][1:]
    assert len(table) == 6
    assert NOT_TESTED in table[BEATS] and "`make reproduce` (paper/table1)" in table[BEATS]
    assert "not supported (CPU-scale evidence)" in table[CONTROL] and "`make quick` (quick/controls)" in table[CONTROL]
    assert "6 runs (6 completed, 0 diverged, 0 failed) in 2 groups" in text
    assert "seeds 0, 1, 2; hardware: test CPU" in text
    assert "**Rule:**" in text
    assert (out / "quick/controls/table.md").read_text().startswith("# quick/controls (CPU-scale evidence)")


def test_no_runs_means_not_tested(tmp_path):
    (tmp_path / "runs").mkdir()
    aggregate.main(["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "results")])
    text = (tmp_path / "results" / "claims.md").read_text()
    assert text.count(f"| {NOT_TESTED} |") == 6


@pytest.mark.parametrize("name", ["quick/x", "paper/x", "review/x"])
def test_reproduce_command(name):
    assert reproduce_command(name) == {"quick": "make quick", "paper": "make reproduce",
                                       "review": "make review"}[name.split("/")[0]]
