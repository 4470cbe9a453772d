"""What every `rnnkit` sub-command shares: the one-line-error parser, argument types, and `rnnkit train
<task>` itself: its options generated from the task's config dataclasses (rnnkit.config), so every task
spells --lr, --clip, --resume alike and a default lives only in its dataclass field."""
from __future__ import annotations

import argparse
import dataclasses
import sys

EXIT_USAGE = 2


class UsageError(Exception):
    """A user mistake: print the message as one line and exit with code 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (no usage block) and raise instead of exiting."""

    def error(self, message):
        raise UsageError(f"{self.prog}: error: {message}")


def make_parser(**kwargs) -> Parser:
    return Parser(**kwargs)


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected an integer > 0, got {text}")
    return value


def print_metrics(metrics: dict) -> None:
    """`rnnkit eval`'s output: one line of `name value` pairs (machine-readable, 4 decimals)."""
    print(" ".join(f"{k} {v:.4f}" for k, v in metrics.items()))


def print_history(history: list[dict]) -> None:
    """One line per epoch: the training loss and every validation metric."""
    for h in history:
        valid = h.get("valid") or {}
        shown = ", ".join(f"{k} {v:.4f}" for k, v in valid.items() if isinstance(v, (int, float)))
        print(f"epoch {h['epoch']}: train loss {h['train']['loss']:.4f}; valid {shown}")


# ---- `rnnkit train TASK`: options generated from the task's config dataclasses --------------------------------


def add_train_command(train_sub, spec, help: str, description: str | None = None) -> argparse.ArgumentParser:
    """`rnnkit train <spec.name>`: --config/--print-config/--out/--overwrite/--resume, then one flag per field
    of the task's data, model and training dataclasses (defaults and help from the fields themselves)."""
    from rnnkit.config import add_options

    p = train_sub.add_parser(spec.name, help=help, description=description or help)
    g = p.add_argument_group("run")
    g.add_argument("--config", metavar="FILE", help="TOML, YAML or JSON file with data/model/train sections "
                   "(a run's config.json is one); flags on the command line override it")
    g.add_argument("--print-config", action="store_true", help="print the resolved config as JSON and exit")
    g.add_argument("--out", default=f"runs/{spec.name}", help=f"run directory (default: runs/{spec.name})")
    g.add_argument("--overwrite", action="store_true", help="replace the run in --out (only once the new one has "
                   "written its first checkpoint)")
    g.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run exactly; with --epochs N, "
                   "train it up to N epochs in all")
    add_options(p, spec.data_config, "data")
    seen: set[str] = set()
    for cls in model_configs(spec):
        add_options(p, cls, "model", title="model" if not seen else f"model ({cls.__name__})", skip=tuple(seen))
        seen |= {f.name for f in dataclasses.fields(cls)}
    add_options(p, spec.train_config, "train", title="training")
    return p


def model_configs(spec) -> tuple:
    """The model dataclasses of a task: one, or several picked by an option (lm: --model rnn|nplm)."""
    return getattr(spec, "model_configs", (spec.model_config,))


@dataclasses.dataclass
class Resolved:
    """The configs of one `rnnkit train` call: file < command line, checked."""

    data: object
    model: dict  # the model config's own fields (sizes come from the data)
    train: object

    def to_dict(self, task: str) -> dict:
        return {"task": {"name": task}, "data": dataclasses.asdict(self.data), "model": self.model,
                "train": self.train.to_dict()}


def resolve(args, spec) -> Resolved:
    """The data / model / train configs of `rnnkit train` from --config FILE and the flags given."""
    from rnnkit.config import check_types, cli_fields, defaults, from_dict, given, read_config_file

    sections, where = {}, "command line"
    if args.config:
        sections, where = read_config_file(args.config), str(args.config)
        unknown = sorted(set(sections) - {"task", "data", "model", "train", *getattr(spec, "extra_sections", ())})
        if unknown:
            raise UsageError(f"{where}: unknown section {unknown[0]!r} (expected data, model, train)")
        task = sections.get("task")
        name = task.get("name") if isinstance(task, dict) else task
        if name not in (None, spec.name):
            raise UsageError(f"{where}: task: this is a config for {name!r}, not for `rnnkit train {spec.name}`")
        for section in ("data", "model", "train"):
            if not isinstance(sections.get(section, {}), dict):
                raise UsageError(f"{where}: {section}: expected a table/object of options, found "
                                 f"{type(sections[section]).__name__}")
    classes = model_configs(spec)
    own = {f.name for cls in classes for f in cli_fields(cls)}
    derived = {f.name for cls in classes for f in dataclasses.fields(cls)} - own  # sizes: from the data
    model = {k: v for k, v in sections.get("model", {}).items() if k not in derived}
    model.update(given(args, "model"))
    for key, value in model.items():  # each key checked against the class that has it
        owner = next((cls for cls in classes if key in {f.name for f in dataclasses.fields(cls)}), classes[0])
        check_types(owner, {key: value}, f"{where}: model")
    data = from_dict(spec.data_config, {**sections.get("data", {}), **given(args, "data")}, f"{where}: data")
    train = from_dict(spec.train_config, {**sections.get("train", {}), **given(args, "train")}, f"{where}: train")
    model_defaults = spec.model_defaults(model) if hasattr(spec, "model_defaults") else defaults(classes[0])
    return Resolved(data, {**model_defaults, **model}, train)


def run_train(args, spec, describe=None, after=None) -> int:
    """`rnnkit train TASK`: resolve the configs, then fit (or resume) through the task driver.
    `describe(prepared)`: a line about the data, printed before training; `after(run_dir)`: the task's report
    of the trained run."""
    import json

    from rnnkit.config import flag_of, given
    from rnnkit.tasks import driver

    if args.resume:
        if args.config or args.print_config or args.overwrite:
            raise UsageError("rnnkit train: error: --resume continues a run with its own config; it takes no "
                             "--config, --print-config or --overwrite")
        changed = sorted({**given(args, "data"), **given(args, "model")})
        if changed:
            fields = {f.name: f for cls in (spec.data_config, *model_configs(spec)) for f in dataclasses.fields(cls)}
            raise UsageError(f"rnnkit train: error: --resume {args.resume}: {flag_of(fields[changed[0]])} "
                             "would change the run's data or model; start a new run with --config "
                             f"{args.resume}/config.json and --out NEW_DIR instead")
        train = given(args, "train")
        history = driver.resume(args.resume, spec, train.pop("epochs", None), **train)
        if not train.get("quiet", False):
            print_history(history)
            if after is not None:
                after(args.resume)
        return 0
    resolved = resolve(args, spec)
    if args.print_config:
        print(json.dumps(resolved.to_dict(spec.name), indent=2))
        return 0
    driver.check_out(args.out, args.overwrite)  # before the data is read: fail fast
    prepared = spec.prepare(resolved.data)
    spec.model_config_for(prepared, dict(resolved.model))  # the model options are checked before any output
    quiet = resolved.train.quiet
    if describe is not None and not quiet:
        print(describe(prepared), file=sys.stderr)
    history = driver.fit(spec, args.out, resolved.data, resolved.model, resolved.train, overwrite=args.overwrite,
                         prepared=prepared)
    if not quiet:
        print_history(history)
        print(f"run saved in {args.out}", file=sys.stderr)
        if after is not None:
            after(args.out)
    return 0
