"""The retrieval benchmark task: recall with ties, the Pareto front, suites of task `retrieval`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, write_suite
from rdmbench.tasks.retrieval.stages import recall_at_k, true_scores
from rdmbench.errors import ConfigError, ConfigErrors
from rdmbench.tasks.retrieval.report import pareto
from rdmbench.suite import load_suite

RETRIEVAL = """
suite: tiny-retrieval
task: retrieval
base:
  data: {dataset: {name: synthetic-shapes, image_size: 16, train_size: 60, test_size: 20}, train_size: 40}
  database: {name: from-dataset, dataset: {name: synthetic-shapes, image_size: 16, train_size: 60, test_size: 20}, split: train, size: 20}
  encoder: {name: pixels}
  retriever: {name: exact}
  benchmark: {label: shapes, k: 5, metric: l2, num_queries: 10, single_queries: 3, repeats: 1}
sweep:
  groups:
    - {retriever.name: [exact]}
    - {retriever.name: [faiss], retriever.build.index_type: [hnsw], retriever.query.ef_search: [8, 16]}
"""


def test_recall_counts_ties_and_ignores_padding():
    db = np.array([[0.0], [1.0], [1.0], [3.0]], np.float32)  # ids 1 and 2 tie for query 0
    q = np.array([[0.0]], np.float32)
    truth = np.array([[0, 1, 2, 3]])
    assert recall_at_k(db, q, truth, np.array([[0, 2]]), 2, "l2")[0] == 1.0  # the tied other one counts
    assert recall_at_k(db, q, truth, np.array([[0, 3]]), 2, "l2")[0] == 0.5
    assert recall_at_k(db, q, truth, np.array([[0, -1]]), 2, "l2")[0] == 0.5
    assert np.isneginf(true_scores(db, q, np.array([[-1]]), "l2")[0, 0])


def test_true_scores_per_metric():
    db = np.array([[3.0, 4.0], [1.0, 0.0]], np.float32)
    q = np.array([[1.0, 0.0]], np.float32)
    ids = np.array([[0, 1]])
    np.testing.assert_allclose(true_scores(db, q, ids, "ip")[0], [3.0, 1.0])
    np.testing.assert_allclose(true_scores(db, q, ids, "cosine")[0], [0.6, 1.0])
    np.testing.assert_allclose(true_scores(db, q, ids, "l2")[0], [-20.0, 0.0])


def test_pareto_front_keeps_undominated_points():
    pts = pd.DataFrame({"recall": [0.5, 0.6, 0.9, 0.95, 0.8], "qps_y": [100, 90, 50, 10, 40]})
    assert pareto(pts)["recall"].tolist() == [0.5, 0.6, 0.9, 0.95]  # 0.8 @ 40 is dominated by 0.9 @ 50


def test_groups_expand_and_the_benchmark_metric_reaches_every_retriever(tmp_path):
    suite = load_suite(write_suite(tmp_path, RETRIEVAL))
    assert [r.run_id for r in suite.runs] == ["name=exact_seed=0", "name=faiss_index_type=hnsw_ef_search=8_seed=0",
                                              "name=faiss_index_type=hnsw_ef_search=16_seed=0"]
    assert all(r.config["retriever"]["build"]["metric"] == "l2" for r in suite.runs)
    assert suite.runs[1].config["retriever"]["query"] == {"nprobe": 16, "ef_search": 8}


@pytest.mark.parametrize("change, message", [
    (lambda d: d["base"]["retriever"].update(build={"metric": "cosine"}), "differs from benchmark.metric 'l2'"),
    (lambda d: d["base"]["benchmark"].update(kk=3), "base.benchmark.kk: unknown key 'kk' (did you mean 'k'?"),
    (lambda d: d["base"].update(head={"name": "rdm"}), "base.head: unknown key 'head'"),
    (lambda d: d["base"]["benchmark"].update(k=50), "k = 50 is larger than the database (20 entries)"),
    (lambda d: d["sweep"]["groups"].append({"retriever.name": ["hnswlib"], "retriever.query.eff": [1]}),
     "retriever.query.eff: unknown key 'eff' (did you mean 'ef'?"),
    (lambda d: d.update(task="retreival"), "unknown task 'retreival' (did you mean 'retrieval'?"),
    (lambda d: d["sweep"].update(groups={"retriever.name": ["exact"]}), "groups must be a list"),
])
def test_bad_retrieval_suites_fail_before_any_work(tmp_path, change, message):
    doc = yaml.safe_load(RETRIEVAL)
    change(doc)
    with pytest.raises((ConfigError, ConfigErrors)) as exc:
        load_suite(write_suite(tmp_path, yaml.safe_dump(doc)))
    assert message in str(exc.value)


def test_a_swept_section_needs_a_label_to_name_its_runs(tmp_path):
    doc = yaml.safe_load(RETRIEVAL)
    doc["sweep"] = {"zip": {"benchmark": [{"k": 3}, {"k": 4}]}}
    with pytest.raises(ConfigError, match="scalar companion"):
        load_suite(write_suite(tmp_path, yaml.safe_dump(doc)))
    doc["sweep"]["zip"]["benchmark.label"] = ["a", "b"]
    assert [r.run_id for r in load_suite(write_suite(tmp_path, yaml.safe_dump(doc))).runs] == \
        ["label=a_seed=0", "label=b_seed=0"]


def test_retrieval_suite_runs_and_reports(tmp_path):
    from rdmbench import runner
    from rdmbench.report import write_report

    suite = load_suite(write_suite(tmp_path, RETRIEVAL))
    out = tmp_path / "out"
    rows = runner.run_suite(suite, out, tmp_path / "cache")
    assert [r["status"] for r in rows] == ["ok"] * 3
    exact = rows[0]
    assert exact["recall"] == 1.0 and exact["metric"] == "l2" and exact["database_size"] == 20
    assert exact["dim"] == 16 * 16 and exact["encoder"].startswith("pixels")
    assert all(r["qps"] > 0 and r["build_s"] >= 0 and r["index_bytes"] > 0 for r in rows)
    text = write_report(out).read_text()
    assert "pareto_recall_qps.png" in text and "| faiss index_type=hnsw |" in text
    assert (out / "report" / "pareto_recall_qps.png").exists()


def test_shipped_retrieval_suites_validate():
    for path in ("suites/retrievers.yaml", "examples/rdmbench-usearch/usearch.yaml"):
        suite = load_suite(REPO / path)
        labels = {r.config["benchmark"]["label"] for r in suite.runs}
        assert labels == {"embedded-default", "fashion-mnist-784-euclidean"}
        fmnist = next(r for r in suite.runs if r.config["benchmark"]["label"] == "fashion-mnist-784-euclidean")
        assert fmnist.config["encoder"]["name"] == "pixels" and fmnist.config["benchmark"]["metric"] == "l2"
