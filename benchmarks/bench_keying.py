"""What keying the code costs a fresh process (rdmbench.provenance), before and after it stopped importing libraries.

Every `rdmbench run` process keys the stages it may compute, which walks the code each stage and plugin reaches.
The walk used to look up every name a module imports from a library (``from diffusers.training_utils import
EMAModel``) as a possible submodule, which imports the library's parent packages: seconds of diffusers,
transformers and torch._dynamo in a process that may find every stage cached. Now a library is recorded by its
top-level name only (all a key holds of it). Each variant runs in its own fresh interpreter: key every built-in
plugin and every module of the core, and check both give the same keys.

    python benchmarks/bench_keying.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = r"""
import json, pkgutil, sys, time
t0 = time.perf_counter()
from rdmbench import provenance
from rdmbench.registry import get_registry
if sys.argv[1] == "before":
    def _target(bound, out):  # the walk as it was: every imported name looked up as a possible submodule
        module, attribute = bound
        if attribute is None:
            return module, provenance.WHOLE
        if provenance.module_file(f"{module}.{attribute}") is not None:
            return f"{module}.{attribute}", provenance.WHOLE
        return module, attribute
    provenance._target = _target
reg = get_registry()
t1 = time.perf_counter()
keys = {f"{k}/{i.name}": provenance.plugin_provenance(i.cls) for k in reg.kinds() for i in reg.all(k)}
import rdmbench, rdmbench_plugins
for p in (rdmbench, rdmbench_plugins):
    for m in pkgutil.walk_packages(p.__path__, p.__name__ + "."):
        keys[m.name] = provenance.provenance_of([(m.name, provenance.WHOLE)])
t2 = time.perf_counter()
print(json.dumps({"seconds": t2 - t1, "startup": t1 - t0, "keys": keys, "modules": len(sys.modules)}))
"""


def once(variant: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, variant], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    for _ in range(args.repeats):  # interleaved, so a busy moment falls on both
        for variant in runs:
            runs[variant].append(once(variant))
    assert runs["before"][0]["keys"] == runs["after"][0]["keys"], "the two walks give different keys"
    n = len(runs["after"][0]["keys"])
    print(f"keys of {n} plugins and modules, identical both ways\n")
    print("| walk | seconds to key them (median) | modules loaded after |\n|---|---|---|")
    med = {v: statistics.median(r["seconds"] for r in rs) for v, rs in runs.items()}
    for v, rs in runs.items():
        print(f"| {v} | {med[v]:.2f} | {rs[0]['modules']} |")
    print(f"\nratio: {med['before'] / med['after']:.2f}x")


if __name__ == "__main__":
    main()
