"""Bring the resolved configs of finished runs (``results/<suite>/runs/*/config.yaml``) to the current run
format, so that ``rdmbench scorecard`` and ``rdmbench report`` compare them with today's suites. Only the
format moves: a migration maps one spelling of the same settings to another, never a value.

    python scripts/migrate_results.py [RESULTS_DIR ...]   # default: every folder under results/

Migrations, oldest first:

- sampler settings owned by the head (2026-12): ``sample.{solver, steps, eta}`` (rdm) and
  ``sample.{top_k, temperature}`` (rarm) became ``sample.head``, the keyword arguments of the head's
  ``sample``. The other head's fields, which it ignored, are dropped.
- the shared loop's settings in one ``train:`` section (2026-12): ``head.{train_steps, batch_size, lr,
  warmup_steps, weight_decay, grad_clip, ema_decay, ema_power, mixed_precision, grad_accumulation}`` became
  ``train.{steps, batch_size, …}``. A suite that swept one of them (``head.train_steps``) sweeps ``train.steps``:
  that axis is renamed in ``suite.json``, each ``row.json`` and ``results.csv``, and so are the run ids it named
  (``train_steps=0`` → ``steps=0``) with their run folders.
- lit's ``held_out_classes`` (2026-12): a ``lit`` encoder spec (``encoder``, ``metrics.text_space``,
  ``sample.encoder``) written before it existed fit on every class, which is what its default (``null``) means;
  the key is added after ``held_out_fraction``, where the resolved spec has it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
#: the sampler fields each built-in head read before they moved under sample.head
SAMPLER_FIELDS = {"rdm": ("solver", "steps", "eta"), "rarm": ("top_k", "temperature")}
OLD_FIELDS = ("solver", "steps", "eta", "top_k", "temperature")
#: the shared loop's settings each built-in head took as constructor arguments -> their train: names
TRAIN_FIELDS = {"train_steps": "steps", "batch_size": "batch_size", "lr": "lr", "warmup_steps": "warmup_steps",
                "weight_decay": "weight_decay", "grad_clip": "grad_clip", "ema_decay": "ema_decay",
                "ema_power": "ema_power", "mixed_precision": "mixed_precision", "grad_accumulation": "grad_accumulation"}
#: the shared loop's defaults before they were a head's train_defaults (rdmbench.api.TrainSettings)
LOOP_DEFAULTS = {"mixed_precision": "no", "grad_accumulation": 1}


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


def train_section(config: dict) -> dict:
    head = config.get("head")
    if "train" in config or not isinstance(head, dict) or not any(k in head for k in TRAIN_FIELDS):
        return config
    out = {}
    for key, value in config.items():
        if key == "head":
            out["head"] = {k: v for k, v in head.items() if k not in TRAIN_FIELDS}
            out["train"] = {new: head.get(old, LOOP_DEFAULTS.get(new)) for old, new in TRAIN_FIELDS.items()}
        else:
            out[key] = value
    return out


def lit_held_out_classes(config: dict) -> dict:
    def spec(s: object) -> object:
        if not isinstance(s, dict) or s.get("name") != "lit" or "held_out_classes" in s:
            return s
        out = {}
        for key, value in s.items():
            out[key] = value
            if key == "held_out_fraction":
                out["held_out_classes"] = None
        return out

    out = {**config, "encoder": spec(config.get("encoder"))}
    if isinstance(config.get("metrics"), dict):
        out["metrics"] = {**config["metrics"], "text_space": spec(config["metrics"].get("text_space"))}
    if isinstance(config.get("sample"), dict) and "encoder" in config["sample"]:
        out["sample"] = {**config["sample"], "encoder": spec(config["sample"]["encoder"])}
    return out if out != config else config


MIGRATIONS = (sampler_under_head, train_section, lit_held_out_classes)
#: swept keys renamed with their section: old -> new (run ids name a key by its last part)
AXES = {f"head.{old}": f"train.{new}" for old, new in TRAIN_FIELDS.items()}


def renamed_axes(folder: Path) -> int:
    """A suite's swept keys renamed (AXES) in suite.json, its rows and results.csv; run ids and run folders
    follow. Returns the number of runs renamed."""
    import csv
    import json

    info_path = folder / "suite.json"
    if not info_path.exists():
        return 0
    info = json.loads(info_path.read_text())
    moved = {k: AXES[k] for k in info.get("swept_keys", []) if k in AXES}
    if not moved:
        return 0

    def new_id(run_id: str) -> str:
        for old, new in moved.items():
            a, b = old.split(".")[-1], new.split(".")[-1]
            run_id = run_id.replace(f"_{a}=", f"_{b}=") if not run_id.startswith(f"{a}=") \
                else f"{b}=" + run_id[len(a) + 1:]
        return run_id

    def write(path: Path, text: str) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)

    renamed = 0
    for run in sorted((folder / "runs").iterdir()):
        row_path = run / "row.json"
        if row_path.exists():
            row = json.loads(row_path.read_text())
            row = {moved.get(k, k): v for k, v in row.items()}
            row["run_id"] = new_id(row["run_id"])
            write(row_path, json.dumps(row, indent=2) + "\n")
        target = run.with_name(new_id(run.name))
        if target != run:
            run.rename(target)
            renamed += 1
    table = folder / "results.csv"
    if table.exists():
        with table.open(newline="") as f:
            rows = list(csv.reader(f))
        header = [moved.get(c, c) for c in rows[0]]
        at = header.index("run_id")
        body = [[new_id(v) if i == at else v for i, v in enumerate(r)] for r in rows[1:]]
        import io

        out = io.StringIO()
        csv.writer(out).writerows([header, *body])
        write(table, out.getvalue())
    info["swept_keys"] = [moved.get(k, k) for k in info["swept_keys"]]
    write(info_path, json.dumps(info, indent=2) + "\n")
    return renamed


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
    runs = sum(renamed_axes(folder) for folder in folders)
    print(f"{changed} config.yaml migrated, {runs} run folders renamed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
