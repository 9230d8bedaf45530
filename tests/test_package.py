"""The installed packages import and expose their public names."""

import importlib
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

PUBLIC = {"rbo": ["RBO", "DivergenceError", "frozen_running_stats"], "baselines": ["SAM", "EntropySGD", "KStepSGD"]}


@pytest.mark.parametrize("package", ["rbo", "baselines", "experiments"])
def test_package_imports(package):
    module = importlib.import_module(package)
    for name in PUBLIC.get(package, []):
        assert hasattr(module, name), f"{package}.{name} is missing"


def test_divergence_error_is_shared():
    from baselines import sam  # noqa: F401  (the baselines raise the same type as RBO)
    from rbo import DivergenceError
    from rbo.common import DivergenceError as Shared

    assert DivergenceError is Shared and issubclass(DivergenceError, FloatingPointError)


# ---- a wheel, installed into a fresh environment (issue 12, "Packaging"; issue 22) ---------------------------------

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "rbo", "baselines", "experiments", "scripts", "conf")
SUITE = ("hydra", "omegaconf", "hydra_plugins", "wandb", "pandas", "matplotlib", "tabulate", "tqdm", "torchvision",
         "numpy", "optuna", "pytorch_optimizer")
TORCH_ALONE = """
import importlib.util, sys

assert not [name for name in sys.argv[1:] if importlib.util.find_spec(name)], "a suite package is visible"
assert importlib.util.find_spec("experiments") is None and importlib.util.find_spec("scripts") is None
import torch
import baselines
from rbo import RBO

model = torch.nn.Linear(3, 2)
x, y = torch.randn(8, 3), torch.tensor([0, 1] * 4)
optimizer = RBO(model.parameters(), lr=0.1, radius=1.0, proj_steps=2)

def closure(advance=False):
    optimizer.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    return loss

optimizer.step(closure)
print(sys.modules["rbo"].__file__, baselines.__file__)
"""


@pytest.mark.slow
def test_the_wheel_ships_the_library_alone_and_it_works_with_torch_alone(tmp_path):
    """Build the wheel from a copy of the sources and install it (no dependencies) into a fresh venv outside the
    checkout that sees this environment's packages, the suite's taken out, through a .pth line (no torch download).
    It holds ``rbo`` and ``baselines`` and no other top-level package (no ``experiments``, no ``scripts``), asks
    for torch alone, and ``from rbo import RBO`` steps; the suite's dependencies are extras (README "Install")."""
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(src),
                    "-w", str(tmp_path / "dist")], check=True, capture_output=True)
    [wheel] = (tmp_path / "dist").glob("rbo_bench-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(f"{info}/METADATA").decode().splitlines()
    assert {n.split("/")[0] for n in names} == {"rbo", "baselines", info}, sorted({n.split("/")[0] for n in names})
    requires = [line.split(":", 1)[1].strip() for line in metadata if line.startswith("Requires-Dist:")]
    assert [r for r in requires if "extra ==" not in r] == ["torch==2.14.1"], requires
    extras = {line.split(":", 1)[1].strip() for line in metadata if line.startswith("Provides-Extra:")}
    assert extras == {"bench", "dev", "zoo"}

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, capture_output=True)
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    torch_only = tmp_path / "torch_only"  # this environment's packages but the suite's (and no .pth: no checkout)
    torch_only.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if entry.name.split(".")[0].split("-")[0] not in SUITE and entry.suffix != ".pth":
            (torch_only / entry.name).symlink_to(entry)
    (Path(purelib) / "outer.pth").write_text(f"{torch_only}\n")
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([python, "-c", TORCH_ALONE, *SUITE], cwd=work, env=env, check=True, capture_output=True,
                         text=True).stdout.split()
    assert len(out) == 2 and all(path.startswith(purelib) for path in out), out
