"""The installed packages import and expose their public names."""

import importlib

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
