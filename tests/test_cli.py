"""The command line: lazy imports, plugin listing, clear errors."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def run_py(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout


def test_help_and_plugins_do_not_import_torch():
    out = run_py("import sys, contextlib, io\n"
                 "from rdmbench.cli import main\n"
                 "buf = io.StringIO()\n"
                 "with contextlib.redirect_stdout(buf):\n"
                 "    main(['plugins'])\n"
                 "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
                 "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
                 "print(buf.getvalue())")
    assert out.splitlines()[0] == "NO-TORCH"
    for kind in ("dataset:", "database:", "encoder:", "retriever:", "first_stage:", "head:", "metric:"):
        assert kind in out
    assert "exact" in out and "rdm" in out and "[rdmbench " in out
    assert "failed to load" not in out


def test_bad_suite_exits_2_with_one_line_per_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: {}\nsweepp: {}\n")
    proc = subprocess.run([sys.executable, "-m", "rdmbench", "run", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "bad.yaml: sweepp: unknown top-level key 'sweepp'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_report_without_results_is_a_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "rdmbench", "report", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2 and "results.csv not found" in proc.stderr
