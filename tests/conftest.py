"""Shared fixtures: small suites on the generated synthetic-shapes dataset (no files needed)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FASHION = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")

# one thread per pytest-xdist worker (`make test` runs two on two cores), two without xdist. Forced in a
# worker: it inherits the controller's value, and two threads per worker (and per suite it runs in a
# subprocess) on two busy cores made OpenMP spin: a 10-step smoke head took 83 s instead of 2 s
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
else:
    os.environ.setdefault("OMP_NUM_THREADS", "2")
# the suites the tests run (smoke profiles, in subprocesses too) are tiny: oneDNN's per-shape planning
# costs more than it saves there (rdmbench.runner; real runs keep it)
os.environ.setdefault("RDMBENCH_ONEDNN", "0")


@pytest.fixture(autouse=True, scope="session")
def _no_onednn_for_toy_models():
    """oneDNN spends seconds planning every new conv shape; the toy models of tests never repay it.

    Real runs keep it on (it doubles UNet training throughput at 28x28, benchmarks/RESULTS.md).
    """
    import torch

    previous = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    yield
    torch.backends.mkldnn.enabled = previous

TINY_BASE = """
suite: tiny
version: 1
base:
  seed: 0
  k_train: 2
  data:
    dataset: {name: synthetic-shapes, image_size: 16, train_size: 240, test_size: 80}
    train_size: 120
    reference_size: 60
  database: {name: from-dataset, dataset: {name: synthetic-shapes, image_size: 16, train_size: 240, test_size: 80}, size: 100}
  first_stage: {name: identity}
  encoder: {name: efficientnet-lite, variant: lite0, image_size: 32, batch_size: 64}
  retriever: {name: exact}
  head: {name: rdm, block_out_channels: [8, 16], attention_levels: [false, true], norm_num_groups: 8,
         cross_attention_dim: 16}
  train: {steps: 3, batch_size: 8}
  sample: {num: 24, head: {steps: 2}, batch_size: 12}
  metrics:
    feature_extractor: {name: efficientnet-lite, variant: lite2, image_size: 32, batch_size: 64}
    use: {fid: {}, kid: {subset_size: 10, subsets: 5}, precision-recall: {}, class-agreement: {}}
sweep:
  grid:
    k_train: [0, 2]
"""


def register_for_test(request, monkeypatch, hook: str, *classes: type) -> None:
    """Register plugin classes under one hook (e.g. ``"rdmbench_datasets"``) for the requesting test
    only: the process-wide registry is as it was afterwards."""
    from rdmbench import registry
    from rdmbench.hookspecs import hookimpl

    plugin = type("TestPlugin", (), {hook: hookimpl(lambda self: list(classes))})()
    monkeypatch.setattr(registry, "_REGISTRY", registry.get_registry())
    registry.register_in_process(plugin)
    request.addfinalizer(lambda: registry.get_registry().pm.unregister(plugin))


@pytest.fixture
def tiny_suite(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_BASE)
    return path


def write_suite(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- Fashion-MNIST: skipped on a laptop without it, a failure in CI ---------------------------------
CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
FASHION_FILES = [FASHION.parent / f"{stem}-{kind}-idx{n}-ubyte.gz" for stem in ("train", "t10k")
                 for kind, n in (("images", 3), ("labels", 1))]


@pytest.fixture
def fashion_mnist() -> Path:
    """The Debian Fashion-MNIST folder. Missing, a test skips locally but fails when CI is set: a CI
    that skipped them would go green without running any real-suite test."""
    missing = [p for p in FASHION_FILES if not p.is_file()]
    if missing:
        hint = (f"Fashion-MNIST is not installed ({missing[0]} missing): run `bash scripts/install.sh` "
                "or `sudo apt-get install dataset-fashion-mnist`")
        if CI:
            pytest.fail(f"{hint} (CI is set, so this test must not be skipped)")
        pytest.skip(hint)
    return FASHION.parent


needs_fashion_mnist = pytest.mark.usefixtures("fashion_mnist")


@pytest.fixture
def chromium() -> str:
    """Debian's headless Chromium, for the HTML report test: skipped without it locally, a failure in CI."""
    import shutil

    found = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    if found is None:
        hint = "Chromium is not installed: run `bash scripts/install.sh` or `sudo apt-get install chromium`"
        if CI:
            pytest.fail(f"{hint} (CI is set, so this test must not be skipped)")
        pytest.skip(hint)
    return found


needs_chromium = pytest.mark.usefixtures("chromium")


# -- the command line in a subprocess, on a suite small enough to run many times -------------------
#: two runs (parametric baseline and k = 2, guided, top-m 0.5) on 8x8 synthetic shapes with raw-pixel
#: embeddings and features: every stage of a generation run in ~3 s of work after the imports
FAST_BASE = """
suite: fast
version: 1
base:
  seed: 0
  k_train: 2
  data:
    dataset: {name: synthetic-shapes, image_size: 8, train_size: 100, test_size: 32}
    train_size: 48
    reference_size: 24
  database: {name: from-dataset, dataset: {name: synthetic-shapes, image_size: 8, train_size: 100, test_size: 32},
             size: 40}
  first_stage: {name: identity}
  encoder: {name: pixels}
  retriever: {name: exact}
  head: {name: rdm, block_out_channels: [8, 16], attention_levels: [false, true], norm_num_groups: 8,
         cross_attention_dim: 16}
  train: {steps: 20, batch_size: 8}
  sample: {num: 12, head: {steps: 10}, batch_size: 12, guidance_scale: 2.0, mode: {name: unconditional, top_m: 0.5}}
  metrics:
    feature_extractor: {name: pixels}
    use: {fid: {}, kid: {subset_size: 6, subsets: 3}}
    bootstrap: 50
sweep:
  grid:
    k_train: [0, 2]
"""


def cli_env() -> dict[str, str]:
    # one thread: on a shared 2-core runner, torch's spinning worker threads made 2 toy training
    # steps take 6-9 s instead of 0.2 s
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def cli_args(suite: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "rdmbench", "run", str(suite), "--results", str(out), "--cache", str(cache),
            "--no-report", *extra]


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(args), cwd=REPO, env=cli_env(), capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def result_table(out: Path) -> list[dict[str, str]]:
    """results.csv without its timing columns (``*_s``), the part two runs must agree on to the digit."""
    with open(out / "results.csv", newline="") as f:
        return [{k: v for k, v in row.items() if not k.endswith("_s")} for row in csv.DictReader(f)]


@dataclass
class CliRun:
    suite: Path
    out: Path
    cache: Path
    seconds: float
    #: when each stage entry and row appeared, in seconds from the start: ``stage/key`` or ``row:<run_id>``
    events: dict[str, float] = field(default_factory=dict)
    #: seconds from the start until run_suite wrote suite.json (interpreter and imports)
    startup: float = 0.0


def artefact_times(out: Path, cache: Path) -> dict[str, float]:
    """Modification time of every finished stage entry (its stage.json) and every row.json."""
    times = {f"{p.parent.parent.name}/{p.parent.name}": p.stat().st_mtime for p in cache.glob("*/*/stage.json")
             if not p.parent.name.startswith(".")}
    times.update({f"row:{p.parent.name}": p.stat().st_mtime for p in out.glob("runs/*/row.json")})
    return times


@pytest.fixture(scope="session")
def fast_reference(tmp_path_factory) -> CliRun:
    """FAST_BASE run once, uninterrupted, from an empty cache through the command line: the rows and
    bytes every fault and reproducibility test compares against, and the timeline kills are drawn on."""
    tmp = tmp_path_factory.mktemp("fast-reference")
    suite = write_suite(tmp, FAST_BASE, "fast.yaml")
    out, cache = tmp / "results" / "fast", tmp / "results" / ".cache"
    start = time.time()
    run_cli(*cli_args(suite, out, cache))
    seconds = time.time() - start
    events = {k: t - start for k, t in artefact_times(out, cache).items()}
    return CliRun(suite, out, cache, seconds, events, (out / "suite.json").stat().st_mtime - start)


def is_timing(field: str) -> bool:
    """A stage's timing, by name (``seconds``, ``sample_s``, ``train_images_per_s``, ``bootstrap_s``): the only
    values two runs of one config may disagree on."""
    return field == "seconds" or field.endswith("_s")


#: the files of an entry that record timings beside results (JSON: compared field by field, timings aside)
TIMED_FILES = ("info.json", "metrics.json")


def cache_differences(expected: Path, got: Path) -> list[str]:
    """Every way the finished entries of cache ``got`` differ from those of ``expected``: entries missing or
    extra, and any file of an entry whose bytes differ (checksums recorded at write), except timings by name:
    ``stage.json``'s ``written``, and timing fields of ``info.json`` and ``metrics.json``. [] when identical."""
    import json

    def entries(cache: Path) -> dict[str, Path]:
        return {f"{p.parent.parent.name}/{p.parent.name}": p.parent for p in cache.glob("*/*/stage.json")
                if not p.parent.name.startswith(".")}

    def untimed(path: Path) -> dict:
        return {k: v for k, v in json.loads(path.read_text()).items() if not is_timing(k)}

    want, have = entries(expected), entries(got)
    problems = [f"{name}: missing" for name in sorted(want.keys() - have.keys())]
    problems += [f"{name}: not in the expected cache" for name in sorted(have.keys() - want.keys())]
    for name in sorted(want.keys() & have.keys()):
        a, b = json.loads((want[name] / "stage.json").read_text()), json.loads((have[name] / "stage.json").read_text())
        files_a, files_b = a.pop("files"), b.pop("files")
        a.pop("written"), b.pop("written")
        if a != b:
            problems.append(f"{name}/stage.json differs: {sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))}")
        if files_a.keys() != files_b.keys():
            problems.append(f"{name}: files {sorted(files_a)} against {sorted(files_b)}")
        for file in sorted(files_a.keys() & files_b.keys()):
            if file in TIMED_FILES:
                if untimed(want[name] / file) != untimed(have[name] / file):
                    problems.append(f"{name}/{file} differs beyond its timings")
            elif files_a[file] != files_b[file]:
                problems.append(f"{name}/{file} differs")
    return problems
