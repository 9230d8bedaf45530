"""The installed packages import and expose their public names."""

import importlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from conftest import SMALL

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


# ---- a wheel, installed into a fresh environment (issue 12, "Packaging") ---------------------------------------

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "rbo", "baselines", "experiments", "scripts", "conf")
SUITE = ("hydra", "omegaconf", "hydra_plugins", "wandb", "pandas", "matplotlib", "tabulate", "tqdm", "torchvision",
         "numpy", "optuna")
TORCH_ALONE = """
import importlib.util, sys

assert not [name for name in sys.argv[1:] if importlib.util.find_spec(name)], "a suite package is visible"
import torch
import baselines, rbo

model = torch.nn.Linear(3, 2)
x, y = torch.randn(8, 3), torch.tensor([0, 1] * 4)
optimizer = rbo.RBO(model.parameters(), lr=0.1, radius=1.0, proj_steps=2)

def closure(advance=False):
    optimizer.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    return loss

optimizer.step(closure)
print(rbo.__file__, baselines.__file__)
"""


@pytest.mark.slow
def test_wheel_gives_the_optimizers_with_torch_alone_and_the_suite_trains(tmp_path):
    """Build the wheel from a copy of the sources, install it (no dependencies) into a fresh venv that sees this
    environment's packages through a .pth line (no torch download; the .pth files there, this checkout's editable
    install among them, are not processed). The metadata asks for torch alone; ``rbo`` and ``baselines`` import and
    step with every suite package blocked; ``rbo-train`` trains from a folder outside the checkout, with the conf/
    shipped in the wheel."""
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
        info = next(n.split("/")[0] for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        requires = [line.split(":", 1)[1].strip() for line in archive.read(f"{info}/METADATA").decode().splitlines()
                    if line.startswith("Requires-Dist:")]
        scripts = archive.read(f"{info}/entry_points.txt").decode()
        assert "experiments/conf/config.yaml" in archive.namelist()
    assert [r for r in requires if "extra ==" not in r] == [r for r in requires if r.startswith("torch=")]
    assert len([r for r in requires if "extra ==" not in r]) == 1, requires
    assert all(f"{name} = " in scripts for name in ("rbo-train", "rbo-plan", "rbo-tables", "rbo-figures")), scripts

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, capture_output=True)
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("WANDB_")}
    work = tmp_path / "work"
    work.mkdir()

    # torch alone: this environment's packages but the suite's, then the whole of them for training
    torch_only = tmp_path / "torch_only"
    torch_only.mkdir()
    outer = Path(sysconfig.get_paths()["purelib"])
    for entry in outer.iterdir():
        if entry.name.split(".")[0].split("-")[0] not in SUITE and entry.suffix != ".pth":
            (torch_only / entry.name).symlink_to(entry)
    (Path(purelib) / "outer.pth").write_text(f"{torch_only}\n")
    out = subprocess.run([python, "-c", TORCH_ALONE, *SUITE], cwd=work, env=env, check=True, capture_output=True,
                         text=True).stdout.split()
    assert len(out) == 2 and all(path.startswith(purelib) for path in out), out
    (Path(purelib) / "outer.pth").write_text(f"{outer}\n")

    subprocess.run([venv / "bin" / "rbo-train", *SMALL, "optimizer=sgd", "epochs=1", f"runs_dir={work / 'runs'}"],
                   cwd=work, env=env, check=True, capture_output=True)
    [record] = (work / "runs" / "default").iterdir()
    assert json.loads((record / "summary.json").read_text())["status"] == "completed"
    [job] = json.loads((record / "invocations.json").read_text())
    hydra = (Path(job["output_dir"]) / ".hydra" / "hydra.yaml").read_text()
    assert f"{purelib}/experiments/conf" in hydra and str(ROOT) not in hydra
