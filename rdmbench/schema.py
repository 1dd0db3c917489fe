"""Config sections every task shares, and the keys a suite file may hold.

A task's run schema (``rdmbench.tasks.<task>.schema``) is built from these sections plus its own.
Plugin sections are ``{name: ..., **constructor kwargs}`` and are checked against the plugin's
signature by the registry; everything else is checked by pydantic. Unknown keys are errors everywhere.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, WrapValidator
from pydantic_core import PydanticCustomError

PluginSpec = dict[str, Any]


class Section(BaseModel):
    # strict: "64", true and 64.0 are not integers (coercing them once made "64" and 64 two runs of one
    # config); an int where a float is expected still fits, as YAML writes 1 for 1.0. Frozen: the resolved spec
    # is what every stage reads and keys, so nothing after validation may change it
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DataSection(Section):
    dataset: PluginSpec
    train_split: str = "train"
    #: None: the whole split.
    train_size: int | None = Field(default=None, gt=0)
    #: the held-out split that metrics compare against (never seen by the head or the database)
    reference_split: str = "test"
    reference_size: int | None = Field(default=None, gt=0)
    #: X and D must be disjoint (checked by content hash) unless this is true
    allow_overlap: bool = False
    #: D and the reference set must be disjoint too (samples would be scored against images the
    #: model retrieves) unless this is true; the overlap is recorded in the database stage's info
    allow_reference_overlap: bool = False
    #: seed of the X / reference subsets; apart from the run seed so that seeds share the data stages
    seed: int = 0


class RetrieverSection(Section):
    name: str
    #: build-time parameters: the retriever's constructor arguments
    build: dict[str, Any] = Field(default_factory=dict)
    #: query-time parameters: keyword-only arguments of the retriever's ``search_index``
    query: dict[str, Any] = Field(default_factory=dict)
    #: neighbours searched once per training image: at least this many, more if a run needs more.
    #: A fixed floor lets suites with different k ranges share one neighbour table.
    train_neighbours: int = Field(default=16, ge=1)


def _one_message(value: Any, handler: Any) -> Any:
    try:
        return handler(value)
    except ValidationError:  # one message, not one per member of the union
        raise PydanticCustomError("threads", "must be auto or a positive integer") from None


#: the run's compute threads (torch's intra-op pool and numpy's BLAS/OpenMP pools): ``auto`` is what a serial
#: run uses here, resolved to an int by the process that runs ``rdmbench run`` before any run starts, so every
#: worker of a scheduler computes with the driver's count (rdmbench.device.resolve_threads)
Threads = Annotated[Literal["auto"] | Annotated[int, Field(gt=0)], WrapValidator(_one_message)]


class RunSpec(Protocol):
    """What every task's run schema holds (the engine, the runner and the schedulers read only these)."""

    task: str
    seed: int
    #: auto: cuda if available, else cpu. Not part of cache keys.
    device: str
    threads: int | str
    data: DataSection
    database: PluginSpec
    encoder: PluginSpec
    retriever: RetrieverSection

    def model_dump(self) -> dict[str, Any]: ...


SUITE_KEYS = ("suite", "version", "description", "task", "include", "base", "sweep", "seeds", "profiles",
              "default_profile", "report", "track")
SWEEP_KEYS = ("grid", "zip", "groups")
REPORT_KEYS = ("x", "hue", "metrics", "title")
