"""The first commands a new user types (issue 25): ``make -n <target>`` is a dry run that runs no Python step and
prints what the target would do; ``make help`` writes colour codes only to a terminal; ``--help`` opens with what
the suite is."""

from __future__ import annotations

import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TARGETS = re.findall(r"^([a-zA-Z_-]+):.*?## ", (ROOT / "Makefile").read_text(), flags=re.MULTILINE)

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


@pytest.fixture
def stub_venv(tmp_path) -> tuple[Path, Path]:
    """A VENV whose python, ruff and pytest only append their arguments to a log: ``(venv, log)``."""
    venv, log = tmp_path / "venv", tmp_path / "calls.log"
    (venv / "bin").mkdir(parents=True)
    for tool in ("python", "ruff", "pytest"):
        stub = venv / "bin" / tool
        stub.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{log}"\n')
        stub.chmod(0o755)
    return venv, log


def make(*args: str, venv: Path, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    """``make`` on the real Makefile, every Python tool (and the venv's creator) replaced by the stubs."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(["make", "-C", str(ROOT), *args, f"VENV={venv}", f"PYTHON={venv / 'bin' / 'python'}"],
                          stdout=stdout, stderr=subprocess.PIPE, text=stdout is subprocess.PIPE, env=env,
                          timeout=120)


def test_the_targets_are_found():
    assert {"help", "plan", "quick", "reproduce", "experiments", "tables", "figures", "clean"} <= set(TARGETS)


@pytest.mark.parametrize("target", TARGETS)
def test_make_n_runs_no_python_step_and_says_what_it_would_do(stub_venv, target):
    """Under -n make still runs recipe lines that contain $(MAKE): none of them may call a Python tool."""
    venv, log = stub_venv
    done = make("-n", target, venv=venv)
    assert done.returncode == 0, done.stderr
    assert not log.exists(), f"make -n {target} ran: {log.read_text()}"
    assert done.stdout.strip(), f"make -n {target} printed nothing"


def test_the_stubs_see_a_real_run(stub_venv):
    """The dry-run test can fail: without -n the same Makefile does call the stubbed Python."""
    venv, log = stub_venv
    (venv / ".installed").touch()
    assert make("plan", "EXPERIMENTS=quick/table1", venv=venv).returncode == 0
    assert "python -m scripts.plan" in log.read_text()


def test_make_help_prints_colour_only_to_a_terminal(stub_venv):
    venv, _ = stub_venv
    piped = make("help", venv=venv)
    assert piped.returncode == 0 and "plan" in piped.stdout and "\x1b" not in piped.stdout
    controller, terminal = pty.openpty()
    with os.fdopen(controller, "rb", buffering=0) as screen:
        done = make("help", venv=venv, stdout=terminal)
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = screen.read(4096)
            except OSError:  # the terminal side is closed and drained
                break
            if not chunk:
                break
            shown += chunk
    assert done.returncode == 0 and b"\x1b[36m" in shown


def test_train_help_opens_with_what_the_suite_is():
    out = subprocess.run([sys.executable, "-m", "experiments.train", "--help"], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=120).stdout
    opening = out.split("== Configuration groups ==")[0]
    assert opening.startswith("rbo-bench: the reference benchmark of the Rolling Ball Optimizer")
    assert "powered by Hydra" not in out
    groups = out.split("== Configuration groups ==")[1].split("== Config ==")[0]
    assert re.search(r"^optimizer: .*\brbo\b", groups, re.MULTILINE) and "\nexperiment/quick: " in groups
