"""A trained retrieval encoder's fit columns (``Encoder.fit_columns``, ``encoder_<key>``) in the generation
report: in the results table of report.md and index.html beside the scores, with their declared label,
direction and description, aggregated into summary.csv, whatever the suite's list of metrics, and without
a figure of their own (a fit is shared by the runs that share it, not a score of the samples)."""

from __future__ import annotations

import json

import pandas as pd

from rdmbench.columns import Column, declarations
from rdmbench.report import write_report

from test_report import k_rows, make_results

#: as lit declares it: a Column with a label, a direction and a description
IMAGE_TO_TEXT = Column("encoder_image_to_text", "joint space: image→text accuracy", "higher",
                       description="share of held-out images whose nearest caption names their class")
#: as an outside encoder wrote it, a bare name: suite.json holds a neutral declaration (no label, no direction)
EXPLAINED = "encoder_explained_variance"


def fitted_results(root, report):
    rows = k_rows()
    for r in rows:
        if r["status"] == "ok":  # one fit per seed, shared by every k_train of that seed
            r[IMAGE_TO_TEXT] = 0.80 + 0.01 * r["seed"]
            r[EXPLAINED] = 0.50 + 0.10 * r["seed"]
    res = make_results(root, rows, ["k_train", "seed"], report)
    meta = json.loads((res / "suite.json").read_text())
    meta["columns"].update(declarations([IMAGE_TO_TEXT, EXPLAINED]))
    (res / "suite.json").write_text(json.dumps(meta))
    return res


def test_fit_columns_are_in_both_reports_whatever_the_metrics_listed(tmp_path):
    res = fitted_results(tmp_path / "listed", {"x": "k_train", "metrics": ["fid", "precision"]})
    md = write_report(res).read_text()
    header = next(line for line in md.splitlines() if line.startswith("| k_train"))
    assert header.endswith("| FD (efficientnet-lite2) ↓ | precision ↑ | joint space: image→text accuracy ↑ | "
                           "encoder_explained_variance |"), header
    row = next(line for line in md.splitlines() if line.startswith("| 4 | 2 |"))
    assert row.endswith("| 0.805 ± 0.0071 | 0.55 ± 0.071 |"), row  # mean ± std over the two seeds' fits
    assert "kid" not in header  # the list still picks the sample metrics
    assert "**joint space: image→text accuracy**: share of held-out images" in md  # the legend
    assert "Its fit's own quality is in **joint space: image→text accuracy**, **encoder_explained_variance**" in md
    page = (res / "report" / "index.html").read_text()
    for text in ("joint space: image→text accuracy", "encoder_explained_variance", "0.805 ± 0.0071", "0.55 ± 0.071"):
        assert text in page, text
    s = pd.read_csv(res / "report" / "summary.csv").set_index("k_train")
    assert s.loc[4, "encoder_image_to_text_mean"] == 0.805 and s.loc[4, "encoder_explained_variance_mean"] == 0.55
    assert not list((res / "report").glob("metric_encoder_*.png"))


def test_fit_columns_without_a_list_of_metrics_get_no_figure(tmp_path):
    res = fitted_results(tmp_path / "all", {"x": "k_train"})
    md = write_report(res).read_text()
    header = next(line for line in md.splitlines() if line.startswith("| k_train"))
    assert "joint space: image→text accuracy ↑" in header and "encoder_explained_variance" in header
    assert (res / "report" / "metric_fid.png").is_file()
    assert not list((res / "report").glob("metric_encoder_*.png"))


def test_a_suite_may_list_a_fit_column_as_a_metric(tmp_path):
    res = fitted_results(tmp_path / "named", {"x": "k_train", "metrics": ["fid", "encoder_image_to_text"]})
    md = write_report(res).read_text()
    header = next(line for line in md.splitlines() if line.startswith("| k_train"))
    assert header.count("joint space: image→text accuracy") == 1
    assert (res / "report" / "metric_encoder_image_to_text.png").is_file()  # asked for: plotted like a metric
