"""README.md and docs/ state no hand-typed number: their generated blocks match the committed results, and the
verdict a sentence cites is the scorecard's (rdmbench.docs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO
from test_scorecard import fabricate, known_effects, layout


def test_readme_and_docs_match_the_committed_results():
    """Pages of the working tree against results as committed: a `make run` on another machine rewrites
    results/k_train with its own numbers, which the pages were never meant to match."""
    from rdmbench.docs import update, update_from_head

    problems = update_from_head(REPO, check=True) if (REPO / ".git").exists() else update(REPO, check=True)
    assert problems == [], "\n".join(problems)


def page_in(tmp_path: Path, body: str) -> Path:
    layout(tmp_path)
    fabricate(tmp_path, known_effects)
    (tmp_path / "README.md").write_text(body)
    return tmp_path / "README.md"


BLOCKS = """# Results

<!-- generated: table results/sweep metrics=precision,fid -->
<!-- end generated -->

<!-- generated: scorecard claims=guidance.* -->
<!-- end generated -->

<!-- generated: figure results/sweep metric=precision -->
<!-- end generated -->

Guidance raises precision (claim guidance.precision: agrees).
"""


def test_blocks_are_generated_then_checked(tmp_path, monkeypatch):
    from rdmbench.docs import update

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr("tempfile.tempdir", None)  # read TMPDIR again
    page = page_in(tmp_path, BLOCKS)
    assert update(tmp_path, check=True)[0].startswith("README.md:4: a generated block differs")
    assert update(tmp_path) == []
    text = page.read_text()
    assert "| label | sample.guidance_scale | precision ↑ | FD (unrecorded features) ↓ | seeds |" in text  # not FID
    assert "| low | " in text and "| 3 |" in text  # a row per configuration, three seeds each
    assert "Student-t interval over the seeds" in text
    assert "| `guidance.precision` |" in text and "**agrees**" in text and "**no effect**" in text
    assert "![precision of results/sweep](img/sweep_precision.png)" in text
    assert (tmp_path / "img" / "sweep_precision.png").stat().st_size > 1000
    assert update(tmp_path, check=True) == []
    edited = text.replace("| low | 1 | 0.", "| low | 1 | 1.", 1)  # a hand-typed precision
    assert edited != text
    page.write_text(edited)
    assert update(tmp_path, check=True)[0].startswith("README.md:6: a generated block differs")
    assert list(scratch.iterdir()) == []  # the reports drawn for the figures are not left behind


@pytest.mark.parametrize("said, problem", [
    ("(claim guidance.precision: unresolved)", "the scorecard says 'agrees'"),
    ("(claim guidance.colour: agrees)", "which no claim file defines"),
    ("(claim\nguidance.precision: unresolved)", "the scorecard says 'agrees'"),  # wrapped prose is still read
    # a citation inside a sentence, with its numbers after the verdict, is read as one too
    ("(0.02 [0.01, 0.03]; claim guidance.precision: unresolved, p 0.01)", "the scorecard says 'agrees'"),
])
def test_a_citation_must_say_the_scorecards_verdict(tmp_path, said, problem):
    from rdmbench.docs import update

    page_in(tmp_path, BLOCKS.replace("(claim guidance.precision: agrees)", said))
    problems = update(tmp_path)
    assert len(problems) == 1 and problem in problems[0] and problems[0].startswith("README.md:27:"), problems


def test_a_citation_wrapped_across_lines_is_checked_as_one(tmp_path):
    from rdmbench.docs import update

    page_in(tmp_path, BLOCKS.replace("(claim guidance.precision: agrees)", "(claim guidance.precision:\nagrees)"))
    assert update(tmp_path) == []


def test_a_pairing_of_runs_the_results_do_not_hold_is_an_error(tmp_path):
    """A page pairing runs that were renamed or never run is stale, not "no replicates": it must be fixed."""
    from rdmbench.docs import update
    from rdmbench.errors import RdmbenchError

    page_in(tmp_path, "<!-- generated: pairing results/sweep a=gone_seed=0 b=gone_seed=1 measure=fid -->\n"
                      "<!-- end generated -->\n")
    with pytest.raises(RdmbenchError, match="README.md: pairing names run .gone_seed=0., which results/sweep/results.csv"):
        update(tmp_path)
