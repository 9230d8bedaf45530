"""README.md's experiments table (issue 10, "claims no more than its runs show"): each row's run count is the number
of jobs its experiments' sweeps launch, as Hydra's sweeper expands them (scripts.plan)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hydra import initialize_config_dir

from scripts import plan

ROOT = Path(__file__).resolve().parents[1]


def experiment_rows() -> list[tuple[list[str], str]]:
    """``(experiments, runs)`` of each row of README's "Experiments" table that names a count. ``…_x`` after
    ``a/b`` means ``a/b_x``; ``…/x`` means ``a/x``; ``a/*`` is every experiment under ``conf/experiment/a``."""
    section = ROOT.joinpath("README.md").read_text().split("\n## Experiments\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`") or not cells[1].isdigit():
            continue
        names = re.findall(r"`([^`]+)`", cells[0])
        first, expanded = names[0], []
        for name in names:
            if name.startswith("…/"):
                name = first.rsplit("/", 1)[0] + name[1:]
            elif name.startswith("…"):
                name = first + name[1:]
            if name.endswith("/*"):
                folder = plan.CONF / "experiment" / name[:-2]
                expanded += sorted(f"{name[:-2]}/{p.stem}" for p in folder.glob("*.yaml"))
            else:
                expanded.append(name)
        rows.append((expanded, cells[1]))
    return rows


ROWS = experiment_rows()


def test_the_table_names_every_experiment_once():
    named = [e for experiments, _ in ROWS for e in experiments]
    files = {str(p.relative_to(plan.CONF / "experiment").with_suffix(""))
             for p in (plan.CONF / "experiment").rglob("*.yaml")}
    assert len(named) == len(set(named)), named
    assert set(named) == files, f"not in README: {sorted(files - set(named))}; no such experiment: " \
                                f"{sorted(set(named) - files)}"


@pytest.mark.parametrize(("experiments", "runs"), ROWS, ids=[" ".join(e) for e, _ in ROWS])
def test_each_rows_run_count_is_what_its_sweeps_launch(experiments, runs, tmp_path):
    with initialize_config_dir(config_dir=str(plan.CONF), version_base="1.3"):
        counted = sum(len(plan.sweep_overrides(e, [f"runs_dir={tmp_path}"])) for e in experiments)
    assert counted == int(runs), f"README says {runs} runs for {', '.join(experiments)}; the sweeps launch {counted}"
