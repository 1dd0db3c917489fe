"""The ``rdmbench`` command. Imports stay lazy: ``--help`` and ``plugins`` never import torch."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from rdmbench import __version__, processes
from rdmbench.errors import RdmbenchError


def main(argv: list[str] | None = None) -> int:
    code = _main(argv)
    if processes.launched() and argv is None:
        # a process of a torchrun launch leaves without C++ static destructors: gloo's threads torn down by them
        # aborted a rank now and then ("terminate called without an active exception") after its run had ended
        # well, even with the process group destroyed first (processes.finish). What it wrote is renamed into
        # place already; only the streams are still to flush.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet = getattr(args, "quiet", False) or not processes.is_main()  # one voice per launch
    logging.basicConfig(level=logging.INFO if not quiet else logging.WARNING,
                        format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    try:
        return args.func(args) or 0
    except RdmbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished stages are cached; run the same command again to resume", file=sys.stderr)
        return 130
    except OSError as exc:  # a full disk outside the stage cache (results folder): one line, not a traceback
        from rdmbench.cache import disk_full

        if not disk_full(exc):
            raise
        print(f"error: no space left on the device ({exc}); free some space and run the same command again: "
              "finished stages and results are kept", file=sys.stderr)
        return 2


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
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="sets",
                     help="override a dotted key of every run after the profile (VALUE is YAML, e.g. "
                          "train.steps=10); a swept axis is sweep.zip.KEY=[...]; repeatable")
    run.add_argument("--executor", default="local", metavar="NAME",
                     help="where the runs go: local (this process, one after another; default), ray (a local "
                          "Ray instance, or the cluster at RAY_ADDRESS), slurm (jobs through submitit), or an "
                          "installed one (rdmbench plugins --kind executor); stage cache and results must be on a "
                          "filesystem every worker shares")
    run.add_argument("--jobs", type=int, metavar="N",
                     help="run N runs at once as processes of this machine, each with threads: auto = the "
                          "machine's cores / N (the same as --executor processes --executor-option jobs=N; "
                          "faster on a CPU, and the rows are those of threads=cores/N)")
    run.add_argument("--executor-option", action="append", default=[], metavar="KEY=VALUE", dest="executor_options",
                     help="an executor setting (VALUE is YAML), e.g. num_gpus=1 (ray), slurm_partition=gpu, "
                          "timeout_min=600 (slurm); repeatable. See docs/scaling.md")
    run.add_argument("--track", action="append", default=[], metavar="TRACKER",
                     help="also export every finished run to tensorboard or mlflow, or an installed tracker "
                          "(rdmbench plugins --kind tracker); repeatable; adds to the suite's track: list: "
                          "<results>/tensorboard, <results>/mlruns")
    run.add_argument("--report", action=argparse.BooleanOptionalAction, default=True,
                     help="write the report after the runs (default: yes)")
    run.add_argument("-q", "--quiet", action="store_true")
    run.set_defaults(func=cmd_run)

    rep = sub.add_parser("report", help="tables and figures from a suite's results")
    rep.add_argument("results", type=Path, nargs="?", default=Path("results/k_train"))
    rep.add_argument("--out", type=Path, help="default: <results>/report")
    rep.set_defaults(func=cmd_report)

    card = sub.add_parser("scorecard", help="the paper's findings as claims (suites/claims/), read from finished "
                                           "suites: paired estimates, intervals, verdicts")
    card.add_argument("results", type=Path, nargs="*", default=[Path("results")],
                      help="results folders of suites, or folders holding them (default: results)")
    card.add_argument("--claims", type=Path, default=Path("suites/claims"), help="claim files (default: suites/claims)")
    card.add_argument("--plan", action="store_true",
                      help="also list the runs that would turn each undecided claim into a verdict, with their "
                           "estimated CPU time")
    card.add_argument("--out", type=Path, help="write scorecard.md and index.html here (default: <first results>/scorecard)")
    card.set_defaults(func=cmd_scorecard)

    docs = sub.add_parser("docs", help="regenerate the numbers of README.md and docs/ from committed results "
                                       "(<!-- generated: … --> blocks) and check the claims their prose cites")
    docs.add_argument("--check", action="store_true", help="change nothing; exit 1 where a page is out of date")
    docs.add_argument("--root", type=Path, default=Path("."), help="the repository (default: .)")
    docs.add_argument("--from-head", action="store_true",
                      help="read results/ and suites/ as committed at HEAD (what CI checks), not the working tree's")
    docs.set_defaults(func=cmd_docs)

    plug = sub.add_parser("plugins", help="list installed plugins by kind; with NAME, its arguments")
    plug.add_argument("name", nargs="?", help="show this plugin's arguments: types, defaults and docs")
    plug.add_argument("--kind", help="only this kind")
    plug.add_argument("-v", "--verbose", action="store_true", help="show every plugin's arguments")
    plug.set_defaults(func=cmd_plugins)

    cache = sub.add_parser("cache", help="the stage cache: list entries, verify checksums, prune unused entries")
    csub = cache.add_subparsers(dest="cache_command", required=True)
    for name, text in (("list", "entries with stage, size, age and the runs that use them"),
                       ("verify", "recompute every entry's checksums against those recorded at write"),
                       ("prune", "remove entries that no result references, and leftovers of interrupted writes")):
        c = csub.add_parser(name, help=text)
        c.add_argument("--cache", type=Path, default=Path("results/.cache"), help="default results/.cache")
        c.add_argument("--results", type=Path, help="results root whose runs/*/stages.json count as references "
                                                    "(default: the folder holding the cache)")
        if name == "list":
            c.add_argument("--stage", help="only this stage (data, train, samples, ...)")
        if name == "verify":
            c.add_argument("--remove", action="store_true", help="delete corrupt entries (the next run recomputes them)")
        if name == "prune":
            c.add_argument("--dry-run", action="store_true", help="only list what would be removed")
            c.add_argument("--min-age", type=float, default=60.0, metavar="MINUTES",
                           help="keep unreferenced entries younger than this (a run may still be going; default 60)")
        c.set_defaults(func=cmd_cache)

    data = sub.add_parser("data", help="dataset utilities")
    dsub = data.add_subparsers(dest="data_command", required=True)
    fetch = dsub.add_parser("fetch", help="download a dataset from its official source (needs a network)")
    fetch.add_argument("name", help="e.g. fashion-mnist")
    fetch.add_argument("--dest", type=Path, help="default: the user cache (~/.cache/rdmbench/<name>)")
    fetch.set_defaults(func=cmd_fetch)
    return p


def cmd_run(args: argparse.Namespace) -> int:
    from rdmbench import runner
    from rdmbench.suite import load_suite

    suite = load_suite(args.suite, args.profile, sets=args.sets)
    if suite.track or args.track:
        from dataclasses import replace

        from rdmbench.track import check

        check(suite.track, file=str(args.suite))
        check(args.track, key="--track")
        suite = replace(suite, track=tuple(dict.fromkeys([*suite.track, *args.track])))
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
    if args.jobs is not None:
        if args.executor not in ("local", "processes") or args.executor_options:
            raise RdmbenchError("--jobs runs processes of this machine: not with --executor "
                                f"{args.executor} or --executor-option (use the executor's own options)")
        if args.jobs < 1:
            raise RdmbenchError(f"--jobs must be at least 1, got {args.jobs}")
        if args.jobs > 1 or args.executor == "processes":  # --executor processes --jobs 1 means one job, not 2
            args.executor, args.executor_options = "processes", [f"jobs={args.jobs}"]
    if args.executor != "local":
        from rdmbench.execute import fan_out, parse_options

        if processes.launched():
            raise RdmbenchError("--executor: a launch of several processes (torchrun) runs its suite itself; "
                                "use one or the other")
        rows = fan_out(suite, out, cache, args.executor, use_cache=not args.no_cache, only=args.only,
                       options=parse_options(args.executor_options))
    else:
        if args.executor_options:
            raise RdmbenchError("--executor-option: the local executor takes no options")
        rows = runner.run_suite(suite, out, cache, use_cache=not args.no_cache, only=args.only)
        processes.finish()
    if not processes.is_main():  # another process of a launch: the main one reports
        return 0
    failed = [r for r in rows if r.get("status") != "ok"]
    print(f"{len(rows) - len(failed)} ok, {len(failed)} failed -> {out / 'results.csv'}")
    if args.report and rows:
        from rdmbench.report import write_report

        md = write_report(out)
        print(f"report: {md.with_name('index.html')} (open it in a browser; {md.name} for terminals)")
    return 1 if failed else 0


def cmd_report(args: argparse.Namespace) -> int:
    from rdmbench.report import write_report
    from rdmbench.runner import require_results

    require_results(args.results)
    md = write_report(args.results, args.out)
    print(md.with_name("index.html"))
    print(md)
    return 0


def cmd_scorecard(args: argparse.Namespace) -> int:
    from rdmbench import cache, scorecard
    from rdmbench.claims import load_claims
    from rdmbench.report import html, markdown

    tests = load_claims(args.claims)
    found = scorecard.find_results(args.results)
    rows = scorecard.score(tests, found)
    for res in {r.results for r in rows if r.results is not None}:
        if not (res / "report" / "index.html").is_file():  # the figures each claim links to
            from rdmbench.report import write_report

            write_report(res)
    needs = scorecard.plan(rows, found) if args.plan else None
    out = args.out or (args.results[0] / "scorecard")
    out.mkdir(parents=True, exist_ok=True)
    page = scorecard.report(rows, needs, out)
    text = markdown.render(page)
    cache.write_text(out / "scorecard.md", text)
    cache.write_text(out / "index.html", html.render(page))
    print(text)
    print(f"scorecard: {out / 'index.html'} ({out / 'scorecard.md'} for terminals)")
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    from rdmbench.docs import update, update_from_head

    problems = (update_from_head if args.from_head else update)(args.root, check=args.check)
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        print("README.md and docs/: every generated block and cited verdict matches the committed results")
    return 1 if problems else 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from rdmbench.registry import get_registry, unknown_choice

    reg = get_registry()
    sides = side_kinds()
    if args.kind and args.kind not in [*reg.kinds(), *sides]:
        raise RdmbenchError(unknown_choice("kind", args.kind, [*reg.kinds(), *sides]))
    kinds = [args.kind] if args.kind else [*reg.kinds(), *sides]
    listed = {kind: sides[kind].catalogue() for kind in kinds if kind in sides}  # imports each (never torch)
    broken = {**reg.broken, **{ep: why for _, bad in listed.values() for ep, why in bad.items()}}
    if args.name:
        found = [plugin_help(info) for kind in kinds if kind in reg.kinds() for info in reg.all(kind)
                 if info.name == args.name]
        found += [side_help(kind, *entry) for kind, (good, _) in listed.items() for entry in good
                  if entry[0] == args.name]
        if not found:
            names = sorted({info.name for kind in kinds if kind in reg.kinds() for info in reg.all(kind)}
                           | {entry[0] for good, _ in listed.values() for entry in good})
            named = [f"{ep}: {why}" for ep, why in broken.items() if ep.split(" = ")[0] == args.name]
            raise RdmbenchError(f"plugin {named[0]}" if named else unknown_choice("plugin", args.name, names))
        print("\n\n".join(found))
        return 0
    for kind in kinds:
        print(f"{kind}:")
        if kind in listed:
            if kind == "executor":
                print(f"  {'local':<20} this process, one run after another (the default)  [rdmbench {__version__}]")
            for entry in listed[kind][0]:
                print(side_help(kind, *entry, header=False, verbose=args.verbose))
            continue
        for info in reg.all(kind):
            print(f"  {info.name:<20} {info.description}  [{info.package}]")
            if args.verbose:
                print("\n".join("    " + line for line in plugin_help(info, header=False).splitlines()))
    if broken:
        print("failed to load:")
        for ep, why in broken.items():
            print(f"  {ep}: {why}")
    return 0


def side_kinds() -> dict[str, Any]:
    """The kinds that name one class per entry point in a group of their own, by kind (rdmbench.registry)."""
    from rdmbench.execute import EXECUTORS
    from rdmbench.tasks import TASKS
    from rdmbench.track import TRACKERS

    return {"task": TASKS, "executor": EXECUTORS, "tracker": TRACKERS}


def side_help(kind: str, name: str, cls: type, package: str, header: bool = True, verbose: bool = True) -> str:
    """A task, executor or tracker: its description and package, and what it requires (a tracker's modules)."""
    import importlib.util

    from rdmbench.registry import first_line

    lines = [f"{kind} {name}  [{package}]", f"  {first_line(cls)}"] if header else \
        [f"  {name:<20} {first_line(cls)}  [{package}]"]
    for module, hint in getattr(cls, "requires", {}).items() if verbose else ():
        present = importlib.util.find_spec(module.split(".")[0]) is not None
        lines.append(f"  {'  ' if not header else ''}requires {module}: {'installed' if present else 'MISSING: ' + hint}")
    return "\n".join(lines)


def plugin_help(info, header: bool = True) -> str:
    """A plugin's arguments as a suite writes them: name, type, default, and the doc of each.

    Read from the signature and the ``Args:`` section of the class docstring (or of
    ``search_index``'s, for a retriever's query arguments), without importing anything heavy.
    """
    import importlib.util

    from rdmbench.registry import arguments

    cls = info.cls
    lines = [f"{info.kind} {info.name}  [{info.package}]", f"  {info.description}"] if header else []
    for module, hint in getattr(cls, "requires", {}).items():
        present = importlib.util.find_spec(module.split(".")[0]) is not None
        lines.append(f"  requires {module}: {'installed' if present else 'MISSING: ' + hint}")
    sections = [("arguments", arguments(cls.__init__, doc_from=cls))]
    if info.kind == "retriever":
        sections = [("build arguments (retriever.build)", sections[0][1]),
                    ("query arguments (retriever.query)", arguments(cls.search_index, skip=3))]
    elif info.kind == "head":
        sections.append(("sampler arguments (sample.head)", arguments(cls.sample, skip=3, doc_from=cls.sample)))
    for title, args in sections:
        lines.append(f"  {title}:" + ("" if args else " none"))
        for a in args:
            lines.append(f"    {a.name}: {a.type or 'any'} = {a.default}")
            if a.doc:
                lines.append(f"        {a.doc}")
    if info.kind == "head":  # the shared loop's settings it trains with where the run's train: section is silent
        from dataclasses import asdict

        defaults = ", ".join(f"{k}={v}" for k, v in asdict(cls.train_defaults).items())
        lines.append(f"  training defaults (train): {defaults}")
    return "\n".join(lines)


def cmd_cache(args: argparse.Namespace) -> int:
    from rdmbench import cache_tools

    results = args.results or args.cache.parent
    if args.cache_command == "list":
        print(cache_tools.list_entries(args.cache, results, args.stage))
        return 0
    if args.cache_command == "verify":
        report, bad = cache_tools.verify(args.cache, args.remove)
        print(report)
        return 1 if bad and not args.remove else 0
    print(cache_tools.prune(args.cache, results, args.dry_run, args.min_age * 60))
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from rdmbench.fetch import fetch

    print(fetch(args.name, str(args.dest) if args.dest else None))
    return 0
