"""A metric that ``needs_training`` reads X's features as role "training"; the metrics stage keys them only then."""

from __future__ import annotations

import numpy as np
import yaml

from conftest import FAST_BASE, register_for_test
from rdmbench import runner
from rdmbench.api import Metric, MetricInputs
from rdmbench.cache import read_json
from rdmbench.columns import Column
from rdmbench.suite import load_suite


class NearestTraining(Metric):
    """Median distance of each sample to its nearest training image, over the reference set's (a test fixture)."""

    name = "nearest-training"
    columns = (Column("nearest_training", "nearest training image, samples / held-out"),)
    interval_columns = ()
    needs_training = True

    def compute(self, inputs: MetricInputs) -> dict[str, float]:
        x = inputs.features("training", "embedding")

        def nearest(a: np.ndarray) -> float:
            return float(np.median(np.sqrt(((a[:, None] - x[None]) ** 2).sum(-1)).min(1)))

        return {"nearest_training": nearest(inputs.features("generated", "embedding"))
                / nearest(inputs.features("reference", "embedding"))}


def test_a_metric_that_needs_the_training_set_reads_it_and_only_its_stage_is_keyed_on_it(tmp_path, request,
                                                                                        monkeypatch):
    register_for_test(request, monkeypatch, "rdmbench_metrics", NearestTraining)
    doc = yaml.safe_load(FAST_BASE)
    doc["sweep"]["grid"]["k_train"] = [2]
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump(doc))
    doc["base"]["metrics"]["use"]["nearest-training"] = {}
    audited = tmp_path / "audited.yaml"
    audited.write_text(yaml.safe_dump(doc))
    cache = tmp_path / "cache"
    rows = {name: runner.run_suite(load_suite(path), tmp_path / name, cache)[0]
            for name, path in (("plain", plain), ("audited", audited))}
    assert rows["plain"]["status"] == rows["audited"]["status"] == "ok", rows
    assert 0 < float(rows["audited"]["nearest_training"]) < 10
    inputs = {name: [read_json(cache / "metrics" / key.split("/")[1] / "stage.json")["inputs"]
                     for key in read_json(tmp_path / name / "runs" / "k_train=2_seed=0" / "row.json")["stage_keys"]
                     if key.startswith("metrics/")][0] for name in rows}
    assert "training" in inputs["audited"] and "training" not in inputs["plain"]
    keys = read_json(tmp_path / "audited" / "runs" / "k_train=2_seed=0" / "row.json")["stage_keys"]
    features = {k.split("/")[1]: read_json(cache / k / "stage.json")["config"]["array"] for k in keys
                if k.startswith("features/")}
    assert features[inputs["audited"]["training"]] == "train"  # X's features, the stage the novelty reads too
    assert rows["plain"]["fid"] == rows["audited"]["fid"]  # the other metrics are as they were
