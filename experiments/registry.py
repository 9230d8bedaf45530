"""The optimizer registry: every ``conf/optimizer/*.yaml`` is one optimizer (README "Adding an optimizer").

:func:`optimizer_info` reads how each is built, driven and shown (the registry keys of
:class:`experiments.config.OptimizerConfig`) for tables and figures, without importing torch or any optimizer.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from experiments.config import CONF_DIR, Role

OPTIMIZER_CONF = CONF_DIR / "optimizer"
ROLE_ORDER = tuple(Role)  # tables and legends: the paper's optimizers first, then variants, controls, ...


@dataclass(frozen=True)
class OptimizerInfo:
    """One registry entry, as its YAML file (with the files it inherits from) says."""

    name: str  # the file's name; records say it (``optimizer`` in summary.json)
    display_name: str
    colour: str | None
    marker: str | None
    role: str
    order: int  # position in the registry: by role (:data:`ROLE_ORDER`), then the file's ``order``, then name
    protocol: str
    create_graph: bool
    target: str  # the ``_target_`` Hydra instantiates


def option_names() -> list[str]:
    """Every file of ``conf/optimizer/``, ``custom`` (the template for any class) included."""
    return sorted(path.stem for path in OPTIMIZER_CONF.glob("*.yaml"))


@functools.cache
def optimizer_info() -> dict[str, OptimizerInfo]:
    """``{name: OptimizerInfo}`` for every optimizer of the registry, in registry order. ``custom`` is left out:
    it is a template whose runs are named by their class (``optimizer.name`` is its ``_target_``)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    entries = []
    with initialize_config_dir(config_dir=str(OPTIMIZER_CONF), version_base="1.3"):
        for name in option_names():
            node = OmegaConf.to_container(compose(name), resolve=False)
            if node["role"] == Role.custom:
                continue
            rank = (ROLE_ORDER.index(node["role"]), node["order"] is None, node["order"] or 0, name)
            entries.append((rank, node))
    return {node["name"]: OptimizerInfo(
        name=node["name"], display_name=node["display_name"], colour=node["colour"], marker=node["marker"],
        role=str(node["role"]), order=position, protocol=str(node["protocol"]), create_graph=node["create_graph"],
        target=node["_target_"]) for position, (_, node) in enumerate(sorted(entries, key=lambda e: e[0]))}


def schema_of(name: str) -> type:
    """The schema (:data:`experiments.config.SCHEMAS`) that ``conf/optimizer/<name>.yaml`` composes onto: the one
    its defaults list names, directly or through the file it extends (``rbo_radius0`` extends ``rbo``)."""
    from omegaconf import OmegaConf

    from experiments.config import SCHEMAS

    prefix, suffix = "/schema_optimizer_", "@_here_"
    for entry in OmegaConf.load(OPTIMIZER_CONF / f"{name}.yaml").get("defaults", []):
        if entry.startswith(prefix) and entry.endswith(suffix):
            return SCHEMAS["optimizer"][entry[len(prefix):-len(suffix)]]
        if entry != "_self_":
            return schema_of(entry)
    raise ValueError(f"conf/optimizer/{name}.yaml names no schema in its defaults list; allowed: "
                     f"{', '.join(prefix + family + suffix for family in SCHEMAS['optimizer'])}, or another file")
