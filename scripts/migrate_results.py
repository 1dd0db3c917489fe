"""Bring the resolved configs of finished runs (``results/<suite>/runs/*/config.yaml``) to the current run
format, so that ``rdmbench scorecard`` and ``rdmbench report`` compare them with today's suites. Only the
format moves: a migration maps one spelling of the same settings to another, never a value.

    python scripts/migrate_results.py [RESULTS_DIR ...]   # default: every folder under results/

Migrations, oldest first:

- sampler settings owned by the head (2026-12): ``sample.{solver, steps, eta}`` (rdm) and
  ``sample.{top_k, temperature}`` (rarm) became ``sample.head``, the keyword arguments of the head's
  ``sample``. The other head's fields, which it ignored, are dropped.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
#: the sampler fields each built-in head read before they moved under sample.head
SAMPLER_FIELDS = {"rdm": ("solver", "steps", "eta"), "rarm": ("top_k", "temperature")}
OLD_FIELDS = ("solver", "steps", "eta", "top_k", "temperature")


def sampler_under_head(config: dict) -> dict:
    sample = config.get("sample")
    if not isinstance(sample, dict) or "head" in sample or not any(k in sample for k in OLD_FIELDS):
        return config
    own = SAMPLER_FIELDS.get(config["head"]["name"])
    if own is None:
        raise SystemExit(f"head {config['head']['name']!r}: no known sampler fields; migrate it by hand")
    out = {}
    for key, value in sample.items():
        if key in OLD_FIELDS:
            continue
        out[key] = value
        if key == "guidance_scale":  # where the schema declares it
            out["head"] = {k: sample[k] for k in own if k in sample}
    return {**config, "sample": out}


MIGRATIONS = (sampler_under_head,)


def main() -> int:
    folders = [Path(a) for a in sys.argv[1:]] or sorted(p for p in (REPO / "results").iterdir() if p.is_dir())
    changed = 0
    for path in sorted(f for folder in folders for f in folder.glob("runs/*/config.yaml")):
        config = yaml.safe_load(path.read_text())
        new = config
        for migrate in MIGRATIONS:
            new = migrate(new)
        if new != config:
            tmp = path.with_suffix(".yaml.tmp")
            tmp.write_text(yaml.safe_dump(new, sort_keys=False))
            tmp.replace(path)
            changed += 1
    print(f"{changed} config.yaml migrated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
