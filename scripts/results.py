"""``results/`` from the run records, in one pass that flows one way (issue 20):

    records (:mod:`scripts.records`, :mod:`scripts.evidence`) → frame (:mod:`scripts.frame`) → tables
    (:mod:`scripts.tables`) → statistics (:mod:`scripts.stats`) → claims (:mod:`scripts.claims`,
    :mod:`scripts.claims_md`) → figures (:mod:`scripts.figures`, :mod:`scripts.plot_ironing`) → index
    (:mod:`scripts.index`)

    python -m scripts.results tables figures [--runs runs] [--evidence results/records] [--out results]

The records are read once: the committed evidence (``results/records/``) and then ``runs/``, so that a fresh clone
rebuilds every table and verdict and new runs add to the evidence without erasing any of it (a run in both is read
from ``runs/``). Only the records whose config their experiment's sweeps launch are read (:mod:`scripts.evidence`);
the rest are counted in ``index.md``. With ``--experiments`` the tables and figures of those experiments are
written and ``claims.md``, ``runs.csv`` and ``index.md`` (which need every experiment) are left as they are.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from scripts.evidence import experiment_files, launched, only_launched
from scripts.frame import PAPER_TABLE, build_frame
from scripts.records import load_records

IRONING_RECORD = Path("paper") / "ironing" / "record.json"  # under the evidence folder: the 1-D record
STEPS = ("tables", "figures")
EVIDENCE = "results/records"  # relative to the repository root, where make runs this


def read_ironing(evidence: Path) -> dict | None:
    """The 1-D record (``make ironing`` writes it once), None while it is not there."""
    path = evidence / IRONING_RECORD
    return json.loads(path.read_text()) if path.is_file() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("steps", nargs="*", metavar="{tables,figures}",
                        help="what to write: tables (with claims.md) and/or figures (default: both)")
    parser.add_argument("--runs", default="runs", help="run records beside the evidence (default: runs)")
    parser.add_argument("--evidence", default=EVIDENCE, help=f"the committed run records (default: {EVIDENCE})")
    parser.add_argument("--out", default="results", help="output folder (default: results)")
    parser.add_argument("--paper", default=str(PAPER_TABLE), help="the paper's Table 1 as CSV")
    parser.add_argument("--experiments", nargs="+", metavar="NAME",
                        help="only these experiment names (default: every experiment_name under conf/experiment/); "
                             "claims.md, runs.csv and index.md are then left as they are")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.steps) - set(STEPS))
    if unknown:
        parser.error(f"steps={unknown} unknown; allowed: {', '.join(STEPS)}")
    steps = set(args.steps or STEPS)
    evidence, out = Path(args.evidence), Path(args.out)
    suite = sorted(experiment_files())
    names = args.experiments or suite
    records = load_records(evidence, args.runs).select(names)
    present = set(records.runs["experiment"]) if len(records.runs) else set()
    records = only_launched(records, launched(present))  # composing a sweep takes seconds: only those with records
    frame = build_frame(records, args.paper)
    frame.ironing = read_ironing(evidence)
    whole = set(names) >= set(suite)
    written, notes = [], []
    if "tables" in steps:
        from scripts.tables import write_tables

        written += write_tables(frame, out, whole=whole)
        if whole:
            from scripts.claims import evaluate_claims
            from scripts.claims_md import write_claims

            written.append(write_claims(out / "claims.md", evaluate_claims(frame), frame.groups))
    if "figures" in steps:
        from scripts.figures import draw_figures, draw_ironing_figure

        drawn, notes = draw_figures(frame, out)
        written += drawn
        if whole:
            drawn, note = draw_ironing_figure(frame.ironing, out)
            written += drawn
            notes += [note] if note else []
    if whole:
        from scripts.index import write_index

        written.append(write_index(out, records.describe()))
    else:
        notes.append(f"--experiments {' '.join(names)}: claims.md, runs.csv and index.md left as they are (they read "
                     "every experiment)")
    print(records.describe())
    print("\n".join(notes + [f"{len(frame.groups)} groups of seeds; wrote {len(written)} files under {out}/"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
