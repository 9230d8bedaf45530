"""scripts.claims (issue 10): hand-written run records give the verdict each claim's rule states."""

from __future__ import annotations

import pytest
from test_aggregate import RBO_HYPER, build, every_record_launched, run_results, write_run  # noqa: F401 (a fixture)

from scripts import claims
from scripts.claims import INCONCLUSIVE, NOT_SUPPORTED, NOT_TESTED, SUPPORTED, evaluate_claims, reproduce_command

ROWS = (("mnist", "mlp"), ("mnist", "resnet6"), ("mnist", "vgg9"), ("cifar10", "resnet8"), ("cifar10", "vgg9"),
        ("cifar100", "resnet8"), ("cifar100", "vgg9"))
TABLE1, FASTER, FASTER_COMPUTE, HEATMAP, CONTROL, STABLE, LIMIT, IRONING = range(8)
THEORY = range(12, 15)  # Lemma 1, Propositions 2 and 3
PAPER, REAL, CPU = "paper scale", "real data, full size, not in the paper", "CPU-scale subset"


def write_group(root, optimizer, acc, *, seeds=3, spread=0.002, diverged=(), val=None, **run):
    """One group of ``seeds`` runs (seeds 0, 1, ...): test accuracies ``acc`` ± ``spread`` (sample std = spread
    for 3 seeds), validation accuracy ``val`` (default: the test accuracy); the seeds in ``diverged`` diverged."""
    for seed in range(seeds):
        jitter = spread * (seed - (seeds - 1) / 2)
        status = "diverged" if seed in diverged else "completed"
        write_run(root, optimizer=optimizer, seed=seed, final_acc=acc + jitter, status=status,
                  diverged_at=1 if status == "diverged" else None, final_val=(acc if val is None else val) + jitter,
                  **run)


def write_row(root, dataset, model, rbo_acc, *, rbo_diverged=(), seeds=3, experiment="paper/table1", base_loss=0.5,
              **run):
    """The paper's four optimizers on one row: SGD 80 %, Entropy-SGD 82 %, SAM 85 % (final training loss
    ``base_loss``), RBO ``rbo_acc`` (loss 0.05, 100 evaluations per step)."""
    common = {"experiment": experiment, "dataset": dataset, "model": model, "seeds": seeds, **run}
    for optimizer, acc in (("sgd", 0.80), ("entropy_sgd", 0.82), ("sam", 0.85)):
        write_group(root, optimizer, acc, final_loss=base_loss, **common)
    write_group(root, "rbo", rbo_acc, hyper=RBO_HYPER, evals_per_step=100, final_loss=0.05, diverged=rbo_diverged,
                **common)


def claims_of(root, experiments=None):
    return evaluate_claims(build(root, experiments=experiments))


# ---- claim 1: Table 1 rows


def test_best_on_5_of_7_rows_with_3_seeds_is_supported(tmp_path):
    for i, (dataset, model) in enumerate(ROWS):
        write_row(tmp_path, dataset, model, 0.90 if i < 5 else 0.84)
    claim = claims_of(tmp_path)[TABLE1]
    assert claim.verdict == f"{SUPPORTED} ({PAPER})"
    summary = claim.primary.summary
    assert summary.startswith("RBO best beyond noise on 5 of 7 rows compared (0 ties, 2 behind, 0 undecided)")
    assert "seeds 0,1,2 (3–3 finished per group); 10 epochs; 5,000 held out for validation" in claim.primary.summary


def test_diverged_rows_count_against_rbo(tmp_path):
    """Issue 10's first case: best on 4 rows, behind on 1, every seed diverged on 2: not supported (the diverged
    rows are losses, not missing rows), and the lines list the diverged seeds."""
    for i, (dataset, model) in enumerate(ROWS):
        write_row(tmp_path, dataset, model, 0.90 if i < 4 else 0.84, rbo_diverged=(0, 1, 2) if i >= 5 else ())
    claim = claims_of(tmp_path)[TABLE1]
    assert claim.verdict == f"{NOT_SUPPORTED} ({PAPER})"
    assert "on 4 of 7 rows compared" in claim.primary.summary
    assert sum("diverged/failed seeds 0,1,2" in line for line in claim.primary.lines) == 2


def test_a_partly_diverged_group_is_not_averaged_over_its_survivors(tmp_path):
    """RBO's two surviving seeds lead by 5 pp, its third diverged: the row counts against RBO."""
    write_row(tmp_path, "mnist", "mlp", 0.90, rbo_diverged=(1,))
    [line] = claims_of(tmp_path)[TABLE1].primary.lines[:1]
    assert line.endswith("→ behind") and "rbo 90.00 ± 0.28 % (n=2; diverged/failed seeds 1)" in line


def test_fewer_than_5_rows_or_one_seed_is_inconclusive(tmp_path):
    for dataset, model in ROWS[:4]:
        write_row(tmp_path / "four", dataset, model, 0.95)
    claim = claims_of(tmp_path / "four")[TABLE1]
    assert claim.verdict == f"{INCONCLUSIVE} ({PAPER})" and "need 5 rows compared" in claim.primary.summary
    write_row(tmp_path / "one", "mnist", "mlp", 0.8501, seeds=1)  # issue 10's second case: n = 1, +0.01 pp
    claim = claims_of(tmp_path / "one")[TABLE1]
    assert claim.verdict == f"{INCONCLUSIVE} ({PAPER})"
    assert "rbo has 1 finished seeds (need 3)" in claim.primary.lines[0]


def test_ties_within_noise_are_not_wins(tmp_path):
    for dataset, model in ROWS:
        write_row(tmp_path, dataset, model, 0.853)  # 0.3 pp ahead of SAM: inside the 0.5 pp floor
    claim = claims_of(tmp_path)[TABLE1]
    assert claim.verdict == f"{NOT_SUPPORTED} ({PAPER})" and "(7 ties, 0 behind, 0 undecided)" in claim.primary.summary
    line = claim.primary.lines[0]
    assert line.endswith("→ tie") and "+0.30 pp, p = " in line and "90 % CI [-0.05, +0.65], tie" in line


def test_missing_rows_that_could_decide_leave_it_inconclusive(tmp_path):
    for i, (dataset, model) in enumerate(ROWS[:6]):
        write_row(tmp_path, dataset, model, 0.90 if i < 4 else 0.84)
    claim = claims_of(tmp_path)[TABLE1]
    assert claim.verdict == f"{INCONCLUSIVE} ({PAPER})"
    assert "the missing or undecided rows decide" in claim.primary.summary


def test_table1_claim_rests_on_paper_scale_only_and_on_its_own_experiment(tmp_path):
    """Fashion-MNIST rows, a CPU-scale row and an ad-hoc experiment (read when asked for) never decide claim 1."""
    for dataset, model in ROWS:
        write_row(tmp_path, dataset, model, 0.95, experiment="sweeps/adhoc")
    write_row(tmp_path, "fashion_mnist", "mlp", 0.95, experiment="fashion/table1")
    write_row(tmp_path, "mnist_subset", "mlp", 0.95, experiment="quick/table1")
    found = claims_of(tmp_path, ["sweeps/adhoc", "fashion/table1", "quick/table1"])
    assert found[TABLE1].verdict == NOT_TESTED
    assert {item.experiment for claim in found for item in claim.items} <= {"fashion/table1", "quick/table1",
                                                                            "paper/ironing"}


# ---- selection on validation accuracy


def test_best_setting_is_selected_on_validation_and_reported_on_test(tmp_path):
    """SAM at lr 0.1 has the best test accuracy (92 %) but the worse validation accuracy: lr 0.05 is selected, and
    RBO (90 %) leads. Selecting on test would make SAM win the row."""
    for dataset, model in ROWS[:5]:
        write_row(tmp_path, dataset, model, 0.90)
        write_group(tmp_path, "sam", 0.92, val=0.70, dataset=dataset, model=model, hyper={"lr": 0.1})
    claim = claims_of(tmp_path)[TABLE1]
    assert claim.verdict == f"{SUPPORTED} ({PAPER})"
    assert "sam [lr=0.01] selected on validation accuracy" in claim.primary.lines[0]


def test_several_settings_without_a_validation_split_are_not_picked(tmp_path):
    write_row(tmp_path, "mnist", "mlp", 0.90, val_size=0)
    write_group(tmp_path, "sam", 0.92, hyper={"lr": 0.1}, val_size=0)
    [line] = claims_of(tmp_path)[TABLE1].primary.lines[:1]
    assert "sam: 2 settings and no validation accuracy, no setting picked" in line and "not compared" in line


# ---- claims 2 and 2b: convergence per epoch and per gradient evaluation


def test_faster_per_epoch_but_not_at_equal_compute(tmp_path):
    """RBO's loss 2·0.025^(e/10) reaches the baselines' final 0.5 at epoch 4 (ratio 0.4) after 4,000 evaluations
    against their 100 (ratio 40)."""
    write_row(tmp_path, "fashion_mnist", "mlp", 0.90, experiment="fashion/table1")
    found = claims_of(tmp_path)
    assert found[FASTER].verdict == f"{SUPPORTED} ({REAL})"
    assert "median epoch ratio 0.40" in found[FASTER].primary.summary
    assert found[FASTER_COMPUTE].verdict == f"{NOT_SUPPORTED} ({REAL})"
    assert "epoch ratio 0.40, gradient-evaluation ratio 40.00" in found[FASTER].primary.lines[0]


def test_a_baseline_that_never_trained_or_too_few_epochs_is_no_comparison(tmp_path):
    write_row(tmp_path / "flat", "mnist_subset", "mlp", 0.90, experiment="quick/table1", base_loss=2.28)
    claim = claims_of(tmp_path / "flat")[FASTER]
    assert claim.verdict == f"{INCONCLUSIVE} ({CPU})"
    assert "sgd did not train: final loss 2.2800 > 0.75 × ln(classes) = 1.7269" in claim.primary.lines[0]
    write_row(tmp_path / "short", "mnist_subset", "mlp", 0.90, experiment="quick/table1", epochs=2)
    claim = claims_of(tmp_path / "short")[FASTER]
    assert claim.verdict == f"{INCONCLUSIVE} ({CPU})" and "2 epochs; a ratio needs ≥ 5" in claim.primary.lines[0]


def test_the_five_epoch_fashion_runs_decide_where_two_epochs_cannot(tmp_path):
    """fashion_cpu/table1 at 2 epochs is below the convergence claims' minimum; fashion_cpu/convergence at 5 epochs
    (same tier) is read by claims 2 and 3 and gives their verdict."""
    write_row(tmp_path, "fashion_mnist", "mlp", 0.90, experiment="fashion_cpu/table1", epochs=2)
    write_row(tmp_path, "fashion_mnist", "mlp", 0.90, experiment="fashion_cpu/convergence", epochs=5)
    found = claims_of(tmp_path)
    for name in (FASTER, FASTER_COMPUTE):
        assert found[name].primary.experiment == "fashion_cpu/convergence"
        assert found[name].verdict in (f"{SUPPORTED} ({REAL})", f"{NOT_SUPPORTED} ({REAL})")
        assert {i.experiment for i in found[name].items} == {"fashion_cpu/table1", "fashion_cpu/convergence"}


def test_real_data_outranks_the_cpu_subset(tmp_path):
    write_row(tmp_path, "mnist_subset", "mlp", 0.90, experiment="quick/table1")
    write_row(tmp_path, "fashion_mnist", "mlp", 0.90, experiment="fashion/table1", rbo_diverged=(0,))
    claim = claims_of(tmp_path)[FASTER]
    assert claim.primary.experiment == "fashion/table1" and claim.verdict == f"{NOT_SUPPORTED} ({REAL})"
    assert {item.tier for item in claim.items} == {REAL, CPU}


# ---- claim 4: the radius against rho = 0; claim 6: control agreement


def write_controls(root, rbo_acc, zero_acc, gd_acc, *, rbo_diverged=(), reference="rbo_radius0", spread=0.002,
                   dataset="fashion_mnist", experiment="fashion/table1"):
    common = {"experiment": experiment, "dataset": dataset, "spread": spread}
    write_group(root, "rbo", rbo_acc, hyper=RBO_HYPER, diverged=rbo_diverged, **common)
    write_group(root, "rbo_radius0", zero_acc, hyper={**RBO_HYPER, "radius": 0.0}, **common)
    write_group(root, "sgd_effective_lr", gd_acc, hyper={"lr": 0.1, "reference": reference}, **common)


def test_radius_diverged_everywhere_is_not_supported(tmp_path):
    """Issue 10's third case: ρ = 2 diverged on every seed where ρ = 0 trains well."""
    write_controls(tmp_path, 0.85, 0.80, 0.80, rbo_diverged=(0, 1, 2))
    claim = claims_of(tmp_path)[CONTROL]
    assert claim.verdict == f"{NOT_SUPPORTED} ({REAL})" and "diverged/failed (seeds 0,1,2)" in claim.primary.lines[0]


def test_radius_ahead_beyond_noise_and_control_agreement(tmp_path):
    write_controls(tmp_path, 0.85, 0.80, 0.802)
    found = claims_of(tmp_path)
    assert found[CONTROL].verdict == f"{SUPPORTED} ({REAL})"
    assert found[LIMIT].verdict == f"{SUPPORTED} ({REAL})"
    assert "90 % CI [" in found[LIMIT].primary.lines[0] and "→ agree" in found[LIMIT].primary.lines[0]


def test_control_disagreement_and_an_underpowered_pair(tmp_path):
    write_controls(tmp_path / "far", 0.85, 0.80, 0.75)
    assert claims_of(tmp_path / "far")[LIMIT].verdict == f"{NOT_SUPPORTED} ({REAL})"
    # a 0.2 pp difference with a 2 pp seed spread: the interval reaches past ±1 pp, neither agree nor disagree
    write_controls(tmp_path / "noisy", 0.85, 0.80, 0.802, spread=0.02)
    claim = claims_of(tmp_path / "noisy")[LIMIT]
    assert claim.verdict == f"{INCONCLUSIVE} ({REAL})" and "→ undecided" in claim.primary.lines[0]


def test_control_at_the_wrong_reference_is_not_paired(tmp_path):
    """sgd_effective_lr measured on the ρ = 2 runs (reference=rbo) is not rbo_radius0's own effective step."""
    write_controls(tmp_path, 0.85, 0.80, 0.80, reference="rbo")
    claim = claims_of(tmp_path)[LIMIT]
    assert claim.verdict == f"{INCONCLUSIVE} ({REAL})"
    assert "takes its step from reference=rbo" in claim.primary.lines[0]


# ---- claims 3 and 5: the heat map


def write_grid(root, accs: dict, *, seeds=3, experiment="paper/heatmap", dataset="mnist", diverged=None, loss=0.3):
    """RBO on a ρ × η grid, ``accs[(radius, lr)]`` = test accuracy; ``diverged[(radius, lr)]`` = diverged seeds."""
    for (radius, lr), acc in accs.items():
        write_group(root, "rbo", acc, seeds=seeds, experiment=experiment, dataset=dataset, epochs=3, final_loss=loss,
                    hyper={**RBO_HYPER, "radius": radius, "lr": lr}, diverged=(diverged or {}).get((radius, lr), ()))


def test_heatmap_region_beats_the_smallest_radius(tmp_path):
    write_grid(tmp_path, {(0.1, 1.0): 0.90, (2.0, 1.0): 0.95, (20.0, 1.0): 0.93,
                          (0.1, 10.0): 0.90, (2.0, 10.0): 0.96, (20.0, 10.0): 0.80})
    found = claims_of(tmp_path)
    assert found[HEATMAP].verdict == f"{SUPPORTED} ({PAPER})"
    assert "at 2 of 2 η compared" in found[HEATMAP].primary.summary
    assert found[STABLE].verdict == f"{SUPPORTED} ({PAPER})"


def test_heatmap_larger_radius_uniformly_worse_is_not_supported(tmp_path):
    """Issue 10: ρ changing accuracy is not the claim; a larger ρ that is uniformly worse refutes it. A column
    where nothing trained (accuracy at chance) is left out; one that trained in a single epoch is kept although its
    running-mean training loss is still near ln 10."""
    write_grid(tmp_path, {(0.1, 1.0): 0.95, (2.0, 1.0): 0.90, (0.1, 10.0): 0.96, (2.0, 10.0): 0.91}, loss=2.2)
    write_grid(tmp_path, {(0.1, 0.001): 0.11, (2.0, 0.001): 0.10}, loss=2.30)
    claim = claims_of(tmp_path)[HEATMAP]
    assert claim.verdict == f"{NOT_SUPPORTED} ({PAPER})" and "at 0 of 2 η compared" in claim.primary.summary
    assert any("η=0.001: nothing trained (left out)" in line for line in claim.primary.lines)


def test_heatmap_with_one_seed_per_cell_is_inconclusive(tmp_path):
    write_grid(tmp_path, {(0.1, 1.0): 0.90, (2.0, 1.0): 0.95, (0.1, 10.0): 0.90, (2.0, 10.0): 0.95}, seeds=1)
    claim = claims_of(tmp_path)[HEATMAP]
    assert claim.verdict == f"{INCONCLUSIVE} ({PAPER})" and "has 1 finished seeds" in claim.primary.lines[0]


def test_stability_needs_two_seeds_for_a_negative_verdict_and_ignores_eta_100(tmp_path):
    cells = {(2.0, 1.0): 0.95, (2.0, 10.0): 0.95, (2.0, 100.0): 0.95}
    write_grid(tmp_path / "one", cells, seeds=1, diverged={(2.0, 10.0): (0,)})
    claim = claims_of(tmp_path / "one")[STABLE]
    assert claim.verdict == f"{INCONCLUSIVE} ({PAPER})" and "single seed" in claim.primary.summary
    write_grid(tmp_path / "two", cells, seeds=2, diverged={(2.0, 10.0): (1,)})
    assert claims_of(tmp_path / "two")[STABLE].verdict == f"{NOT_SUPPORTED} ({PAPER})"
    write_grid(tmp_path / "far", cells, seeds=2, diverged={(2.0, 100.0): (0, 1)})  # only η = 100 diverged
    claim = claims_of(tmp_path / "far")[STABLE]
    assert claim.verdict == f"{SUPPORTED} ({PAPER})"
    assert any("beyond the paper's η ≤ 50, not in the verdict" in line for line in claim.primary.lines)
    write_grid(tmp_path / "only100", {(2.0, 1.0): 0.95, (2.0, 100.0): 0.95, (20.0, 1.0): 0.95, (20.0, 100.0): 0.95},
               seeds=1, diverged={(2.0, 100.0): (0,)})  # the committed quick/heatmap's shape: no η in [10, 50]
    claim = claims_of(tmp_path / "only100")[STABLE]
    assert claim.verdict == f"{INCONCLUSIVE} ({PAPER})" and "no RBO group in the paper's range" in claim.primary.summary


# ---- the ironing row, claims.md, reproduce hints


def test_ironing_and_theory_rows_come_from_the_1d_record(tmp_path, monkeypatch):
    """Claim 8 and the theory rows (13-15) read the 1-D record's own verdicts (experiments.ironing.claim_rows);
    without a record they are inconclusive; a verdict outside the four is an error."""
    (tmp_path / "runs").mkdir()
    claims_now = claims_of(tmp_path / "runs")
    assert [claims_now[i].verdict for i in (IRONING, *THEORY)] == [INCONCLUSIVE] * 4
    rows = {key: {"verdict": NOT_SUPPORTED, "evidence": f"{key} evidence", "rule": f"{key} rule"}
            for key in ("ironing", "lemma1", "prop2", "prop3")}
    monkeypatch.setattr(claims, "frame_theory", lambda frame: rows)
    run_results("tables", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), root=tmp_path)
    text = (tmp_path / "out/claims.md").read_text()
    assert "| 8 | The ball irons out wrinkles smaller than ρ (the 1-D figure) | not supported |" in text
    assert "its own rule: ironing rule" in text and "ironing evidence" in text
    assert all(f"{key} evidence" in text for key in ("lemma1", "prop2", "prop3"))
    monkeypatch.setattr(claims, "frame_theory", lambda frame: {"ironing": {"verdict": "fine", "evidence": "",
                                                                          "rule": ""}})
    with pytest.raises(ValueError, match="verdict='fine'"):
        claims_of(tmp_path / "runs")


def test_claims_md_prints_each_rule_beside_its_verdict(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "results"
    write_controls(runs, 0.85, 0.80, 0.802, dataset="mnist_subset", experiment="quick/table1")
    run_results("tables", "--runs", str(runs), "--out", str(out), root=tmp_path)
    text = (out / "claims.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("| ")][1:]
    assert len(table) == 15 and "**Common rules.**" in text
    assert f"| {NOT_TESTED} |" in table[TABLE1] and "`make reproduce` (paper/table1)" in table[TABLE1]
    assert f"| {SUPPORTED} ({CPU}) |" in table[CONTROL] and "`make quick` (quick/table1)" in table[CONTROL]
    sections = text.split("\n## ")[1:]
    assert len(sections) == 15
    assert all(section.index("**Verdict:**") < section.index("**Rule:**") < section.index("**Evidence:**")
               for section in sections)
    assert "6 runs (6 completed, 0 diverged, 0 failed) in 2 groups" in text


def test_no_runs_means_not_tested(tmp_path):
    (tmp_path / "runs").mkdir()
    run_results("tables", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "results"), root=tmp_path)
    text = (tmp_path / "results" / "claims.md").read_text()
    assert text.count(f"| {NOT_TESTED} |") == 11  # all but the four 1-D rows, which train nothing


@pytest.mark.parametrize("name, command", [("quick/x", "make quick"), ("paper/x", "make reproduce"),
                                           ("review/x", "make review")])
def test_reproduce_command(name, command):
    assert reproduce_command(name) == command
