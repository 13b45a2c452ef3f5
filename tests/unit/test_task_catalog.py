"""Every task type of the domain library is offered by the node daemon's registry."""

from __future__ import annotations

import importlib
import pkgutil

import pvc.cluster
from pvc.cluster.tasks.catalog import DOMAIN_TASKS
from pvc.tasks import TaskRegistry, TaskType
from pvc.tasks.builtin import BUILTIN_TASKS


def defined_task_types() -> set[TaskType]:
    """The task types defined anywhere under pvc.cluster (module attributes)."""
    found = set()
    for module_info in pkgutil.walk_packages(pvc.cluster.__path__, "pvc.cluster."):
        module = importlib.import_module(module_info.name)
        found.update(value for value in vars(module).values() if isinstance(value, TaskType))
    return found


def test_the_catalog_lists_every_domain_task_type() -> None:
    assert defined_task_types() == set(DOMAIN_TASKS)


def test_the_node_registry_takes_the_catalog_and_the_builtins_without_clashes() -> None:
    registry = TaskRegistry([*BUILTIN_TASKS, *DOMAIN_TASKS])
    assert len(registry.names()) == len(BUILTIN_TASKS) + len(DOMAIN_TASKS)
