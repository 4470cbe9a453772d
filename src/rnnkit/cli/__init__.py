"""Command line: `rnnkit train <task>`, `rnnkit predict`, `rnnkit eval`, and one verb per use.

This package only parses arguments and calls the library; every command is a few lines of Python.
Each task has its own module here (`rnnkit.cli.lm`, `rnnkit.cli.classify`, ...) with a

    register(train_sub, sub)      # add `rnnkit train <task>` to train_sub and any own verbs to sub

function, found automatically. `rnnkit predict RUN_DIR ...` and `rnnkit eval RUN_DIR ...` read the task
name from RUN_DIR/config.json and hand the remaining arguments to that task's module, which defines

    add_predict_args(parser) / predict(args)      and/or      add_eval_args(parser) / evaluate(args)

so each task owns its options, and unknown options are still rejected. Bad input ends with one line on
stderr and exit code 2; an unexpected error with one line and exit code 1 (`rnnkit --debug ...` shows its
traceback).
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from rnnkit import __version__
from rnnkit.cli.common import EXIT_USAGE, UsageError, make_parser

EXIT_INTERNAL = 1


def _task_modules() -> list:
    """Every module of this package except the shared one, in name order (lm first for --help)."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name != "common")
    names.sort(key=lambda n: n != "lm")
    return [importlib.import_module(f"{__name__}.{n}") for n in names]


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(prog="rnnkit", description="Recurrent neural networks, verified and fast.")
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (also RNNKIT_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=type(parser))
    train = sub.add_parser("train", help="train a model")
    train_sub = train.add_subparsers(dest="task", required=True, parser_class=type(parser))
    for verb, text in (("predict", "predictions of a trained model on new input"),
                       ("eval", "metrics of a trained model on a labelled file")):
        p = sub.add_parser(verb, help=text, description=f"{text}. `rnnkit {verb} RUN_DIR --help` lists the "
                           "options of RUN_DIR's task.")
        p.add_argument("run_dir", help="a run directory written by `rnnkit train`")
        p.add_argument("options", nargs=argparse.REMAINDER, help="the task's own options")
        p.set_defaults(run=_dispatch(verb))
    for module in _task_modules():
        module.register(train_sub, sub)
    return parser


def _dispatch(verb: str):
    """`rnnkit predict|eval RUN_DIR ...`: parse the rest with the options of RUN_DIR's task, then run it."""
    hooks = {"predict": ("add_predict_args", "predict"), "eval": ("add_eval_args", "evaluate")}[verb]

    def run(args) -> int:
        task = run_task_name(args.run_dir)
        module = _module_for(task)
        if module is None or not hasattr(module, hooks[1]):
            raise UsageError(f"rnnkit {verb}: a {task!r} run has no `{verb}`; see `rnnkit --help`")
        parser = make_parser(prog=f"rnnkit {verb} RUN_DIR", description=f"{verb} for a {task!r} run")
        getattr(module, hooks[0])(parser)
        task_args = parser.parse_args(args.options)
        task_args.run_dir = args.run_dir
        return getattr(module, hooks[1])(task_args)

    return run


def _module_for(task: str):
    try:
        return importlib.import_module(f"{__name__}.{task}")
    except ModuleNotFoundError:
        return None


def run_task_name(run_dir) -> str:
    """The task that wrote RUN_DIR (config.json's task.name), with a clear error when there is none."""
    from rnnkit.tasks.driver import run_task_name as name_of

    return name_of(run_dir)


def main(argv=None) -> int:
    """Run one command. Bad input (a file, an option, a run directory) ends with one line on stderr and exit
    code 2; anything else unexpected with one line and exit code 1, the traceback only with --debug (or
    RNNKIT_DEBUG=1)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv or os.environ.get("RNNKIT_DEBUG", "") not in ("", "0")
    if "--debug" in argv:
        argv.remove("--debug")
    try:
        args = build_parser().parse_args(argv)
        return args.run(args) or 0
    except KeyboardInterrupt:
        print("rnnkit: interrupted", file=sys.stderr)
        return 130
    except BaseException as e:  # noqa: BLE001 - the one place every error becomes one line
        if debug or isinstance(e, SystemExit):
            raise
        return _report(e)


def _report(e: BaseException) -> int:
    from rnnkit.data import DataError
    from rnnkit.train import CheckpointError, TrainingDiverged

    if isinstance(e, UsageError):
        print(e, file=sys.stderr)
    elif isinstance(e, (DataError, CheckpointError, TrainingDiverged, ValueError)):
        print(f"rnnkit: error: {e}", file=sys.stderr)
    elif isinstance(e, MemoryError):
        print("rnnkit: error: out of memory (try a smaller model or batch size)", file=sys.stderr)
    elif isinstance(e, OSError):
        where = f"{e.filename}: " if e.filename else ""
        print(f"rnnkit: error: {where}{e.strerror or e}", file=sys.stderr)
    else:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(f"rnnkit: internal error: {type(e).__name__}: {first[:300]} (rerun with --debug for the traceback, "
              "and please report it)", file=sys.stderr)
        return EXIT_INTERNAL
    return EXIT_USAGE
