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
                 "    main(['plugins', '--verbose'])\n"
                 "    main(['plugins', 'faiss'])\n"
                 "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
                 "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
                 "print(buf.getvalue())")
    assert out.splitlines()[0] == "NO-TORCH"
    for kind in ("dataset:", "database:", "encoder:", "retriever:", "first_stage:", "head:", "metric:"):
        assert kind in out
    assert "exact" in out and "rdm" in out and "[rdmbench " in out
    assert "failed to load" not in out
    # plugins NAME: each argument with its type, default and doc, build and query arguments apart
    assert "retriever faiss  [rdmbench " in out and "build arguments (retriever.build):" in out
    assert "    pq_bits: int = 8\n        bits per sub-quantizer code" in out
    assert "query arguments (retriever.query):\n    nprobe: int = 16\n        IVF lists visited per query." in out


def test_plugins_name_unknown_suggests(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "rdmbench", "plugins", "hnswlb"], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown plugin 'hnswlb' (did you mean 'hnswlib'?" in proc.stderr


HIDE_HNSWLIB = ("import sys\n"
                "class Hide:\n"
                "    def find_spec(self, name, path=None, target=None):\n"
                "        if name.split('.')[0] == 'hnswlib':\n"
                "            raise ModuleNotFoundError(name)\n"
                "sys.meta_path.insert(0, Hide())\n"
                "from rdmbench.cli import main\n"
                "sys.exit(main(sys.argv[1:]))\n")


def test_a_missing_library_stops_dry_run_and_run_before_any_work(tmp_path):
    from conftest import TINY_BASE

    suite = tmp_path / "s.yaml"
    suite.write_text(TINY_BASE.replace("retriever: {name: exact}", "retriever: {name: hnswlib}"))
    hint = "base.retriever: the hnswlib retriever needs hnswlib: pip install hnswlib"
    dry = subprocess.run([sys.executable, "-c", HIDE_HNSWLIB, "run", str(suite), "--dry-run"], capture_output=True,
                         text=True, cwd=tmp_path)
    assert dry.returncode == 0 and f"warning, a real run would stop here: {suite}: {hint}" in dry.stdout
    run = subprocess.run([sys.executable, "-c", HIDE_HNSWLIB, "run", str(suite), "--cache", str(tmp_path / "c"),
                          "--results", str(tmp_path / "r")], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-3000:]
    assert [line for line in run.stderr.splitlines() if line.startswith("error:")] == [f"error: {suite}: {hint} "
            "(builds from source with a C++ compiler); the built-in `faiss` retriever (index_type: hnsw) is the same "
            "algorithm (ModuleNotFoundError: hnswlib)"]
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").rglob("info.json")), "a stage ran"


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
