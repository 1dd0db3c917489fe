"""The ``rdmbench`` command. Imports stay lazy: ``--help`` and ``plugins`` never import torch."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from rdmbench import __version__
from rdmbench.errors import RdmbenchError


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if not getattr(args, "quiet", False) else logging.WARNING,
                        format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    try:
        return args.func(args) or 0
    except RdmbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished stages are cached; run the same command again to resume", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rdmbench", description="Benchmarks for retrieval-augmented image generation.")
    p.add_argument("--version", action="version", version=f"rdmbench {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a suite: train, sample, evaluate; one row per run")
    run.add_argument("suite", type=Path, help="suite YAML file, e.g. suites/k_train.yaml")
    run.add_argument("--profile", help="smoke | cpu (default) | paper, or any profile the suite defines")
    run.add_argument("--dry-run", action="store_true", help="validate and print the resolved runs, then exit")
    run.add_argument("--results", type=Path, help="folder for this suite's results (default results/<suite>)")
    run.add_argument("--cache", type=Path, help="stage cache folder (default results/.cache)")
    run.add_argument("--no-cache", action="store_true", help="recompute every stage of every run")
    run.add_argument("--only", nargs="+", metavar="RUN_ID", help="run only these runs")
    run.add_argument("--report", action=argparse.BooleanOptionalAction, default=True,
                     help="write the report after the runs (default: yes)")
    run.add_argument("-q", "--quiet", action="store_true")
    run.set_defaults(func=cmd_run)

    rep = sub.add_parser("report", help="tables and figures from a suite's results")
    rep.add_argument("results", type=Path, nargs="?", default=Path("results/k_train"))
    rep.add_argument("--out", type=Path, help="default: <results>/report")
    rep.set_defaults(func=cmd_report)

    plug = sub.add_parser("plugins", help="list installed plugins by kind")
    plug.add_argument("--kind", help="only this kind")
    plug.set_defaults(func=cmd_plugins)

    data = sub.add_parser("data", help="dataset utilities")
    dsub = data.add_subparsers(dest="data_command", required=True)
    fetch = dsub.add_parser("fetch", help="download a dataset from its official source (needs a network)")
    fetch.add_argument("name", help="e.g. fashion-mnist")
    fetch.add_argument("--dest", type=Path, help="default: the user cache (~/.cache/rdmbench/<name>)")
    fetch.set_defaults(func=cmd_fetch)
    return p


def cmd_run(args: argparse.Namespace) -> int:
    from rdmbench.suite import load_suite
    from rdmbench import runner

    suite = load_suite(args.suite, args.profile)
    root = Path("results")
    out = args.results or runner.results_dir_for(suite, root)
    cache = args.cache or (out.parent / ".cache")
    if args.only:
        unknown = [r for r in args.only if r not in {x.run_id for x in suite.runs}]
        if unknown:
            raise RdmbenchError(f"--only: unknown run {unknown[0]!r} (allowed: {', '.join(r.run_id for r in suite.runs)})")
    if args.dry_run:
        print(runner.dry_run(suite, out))
        return 0
    rows = runner.run_suite(suite, out, cache, use_cache=not args.no_cache, only=args.only)
    failed = [r for r in rows if r.get("status") != "ok"]
    print(f"{len(rows) - len(failed)} ok, {len(failed)} failed -> {out / 'results.csv'}")
    if args.report and rows:
        from rdmbench.report import write_report

        print(f"report: {write_report(out)}")
    return 1 if failed else 0


def cmd_report(args: argparse.Namespace) -> int:
    from rdmbench.report import write_report
    from rdmbench.runner import require_results

    require_results(args.results)
    print(write_report(args.results, args.out))
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from rdmbench.registry import get_registry

    reg = get_registry()
    kinds = [args.kind] if args.kind else reg.kinds()
    for kind in kinds:
        if kind not in reg.kinds():
            raise RdmbenchError(f"unknown kind {kind!r} (allowed: {', '.join(reg.kinds())})")
        print(f"{kind}:")
        for info in reg.all(kind):
            print(f"  {info.name:<20} {info.description}  [{info.package}]")
    if reg.broken:
        print("failed to load:")
        for ep, why in reg.broken.items():
            print(f"  {ep}: {why}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from rdmbench.fetch import fetch

    print(fetch(args.name, str(args.dest) if args.dest else None))
    return 0
