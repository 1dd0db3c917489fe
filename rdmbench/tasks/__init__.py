"""Tasks: what a suite's runs do. Each task is one package behind the ``Task`` interface.

A task owns its run schema, the checks beyond that schema, its plan of cached stages, the columns
its rows carry and its section of the report. Nothing outside a task's package branches on its
name: the suite loader, the runner, the dry run and the report ask the task named in the suite
(and recorded in ``suite.json``). A task is registered by one line of the ``rdmbench.tasks`` entry-point
group (``generation = "rdmbench.tasks.generation:GenerationTask"``), the built-ins in rdmbench's own
pyproject.toml exactly as an outside package registers its own.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from rdmbench.registry import EntryPointClasses

if TYPE_CHECKING:
    from pathlib import Path

    from rdmbench.columns import Column
    from rdmbench.pipeline import Pipeline
    from rdmbench.registry import Registry
    from rdmbench.report.model import ReportData, Section
    from rdmbench.validation import Checks

#: the task's run schema (a frozen ``rdmbench.schema.Section`` that satisfies ``rdmbench.schema.RunSpec``)
S = TypeVar("S")

#: the task of a suite that names none
DEFAULT_TASK = "generation"


class Task(Generic[S]):
    """One kind of run. Subclasses set ``name``, ``schema`` and ``columns`` and implement the methods.

    Every method after ``validate`` gets the run's resolved spec: a frozen instance of ``schema`` with every
    plugin default filled in (``Run.spec``), read as typed attributes down to the stages.
    """

    name: ClassVar[str] = ""
    #: the pydantic model of one run's config (``rdmbench.schema.Section`` subclass, unknown keys forbidden)
    schema: ClassVar[Any] = None
    #: columns the task itself writes into rows (metric plugins declare theirs)
    columns: ClassVar[tuple[Column, ...]] = ()

    def validate(self, run: Any, out: dict[str, Any], checks: Checks) -> None:
        """Checks beyond the schema (plugin arguments, sizes, combinations); fills ``out`` resolved.

        ``run`` is the schema instance, ``out`` its resolved dict; report problems through ``checks``.
        """

    def plugin_specs(self, spec: S) -> list[tuple[str, str, dict[str, Any], bool]]:
        """``(kind, dotted key, spec, fingerprint?)`` of every plugin a run uses, for the preflight."""
        return []

    def shared_part(self, spec: S) -> dict[str, Any]:
        """The part of a run's config that decides the stages before its first training stage: runs with
        the same part share those stages, so a scheduler computes them once before fanning the runs out
        (rdmbench.execute). A wrong part costs waiting on a stage lock, never a wrong number."""
        return spec.model_dump()  # type: ignore[attr-defined,no-any-return]  # every schema is a pydantic model

    def shared_groups(self, runs: list[Any]) -> dict[str, list[Any]]:
        """Runs (anything with a ``spec``) by their shared part, in order: the runs of a group read one cache
        entry per shared stage when made by one code version at one thread count. The scheduler computes each
        group's shared stages once (rdmbench.execute); the scorecard pairs only runs that did (rdmbench.scorecard)."""
        from rdmbench.cache import canonical

        groups: dict[str, list[Any]] = {}
        for run in runs:
            groups.setdefault(canonical(self.shared_part(run.spec)), []).append(run)
        return groups

    def trained_part(self, spec: S) -> dict[str, Any]:
        """The part of a run's config that decides its trained model: runs with the same part share it, so a
        scheduler does not start two of them at once while other work waits (the second would only wait on the
        training stage's lock). The default: the whole config (no two runs share a model)."""
        return spec.model_dump()  # type: ignore[attr-defined,no-any-return]  # every schema is a pydantic model

    def warm(self, pipe: Pipeline, spec: S) -> None:
        """Compute the stages every run of ``spec``'s group will read that do not wait on its shared stages'
        slowest chain (a first stage's training): a scheduler with a spare worker runs this beside the group's
        shared stages, so that worker does not idle on their locks (rdmbench.execute). The default: none."""

    def result_columns(self, spec: S, registry: Registry) -> list[Column]:
        """Every column a run of this config can write: the task's own and its plugins'."""
        return list(self.columns)

    def describe(self, spec: S) -> str:
        """One line for ``--dry-run``."""
        return ""

    def run(self, pipe: Pipeline, spec: S) -> tuple[dict[str, Any], dict[str, Path]]:
        """Compute (or reuse) every stage of one run; return its row and the files to keep beside it."""
        raise NotImplementedError

    def report(self, data: ReportData) -> list[Section]:
        """The task's sections of the report, from its module ``report`` (heavy imports happen there)."""
        module = importlib.import_module(f"{type(self).__module__}.report")
        sections: list[Section] = module.sections(data)
        return sections


#: task name -> its entry point (``rdmbench.tasks`` group); a task's module is imported only when asked for
TASKS: EntryPointClasses[Task[Any]] = EntryPointClasses("rdmbench.tasks", "task", Task)


def task_names() -> list[str]:
    return list(TASKS)


def get_task(name: str, *, file: str | None = None, key: str = "task") -> Task[Any]:
    """A new instance of the task ``name``; an unknown or broken one is a one-line ``ConfigError``."""
    return TASKS.load(name, file=file, key=key)()
