"""Fuzz: corrupted input files and run-directory files, for every command that reads them (issue 12).

Every generated case runs `rnnkit ARGV` in-process (rnnkit.cli.main, as tests/_cli_errors.py does) and must end
in one of two ways, never with a traceback:

    exit 0                       the corruption left a valid file (a flipped letter in a word, CRLF line ends)
    exit 2 and one stderr line   the line names the corrupted file (or, for a config/vocabulary that no longer
                                 matches the weights, the weights file) in at most 500 characters

Corruptions that can never leave a valid file (empty, NUL or non-UTF-8 bytes, an .npz archive, truncated gzip,
a deleted config.json ...) must give exit 2 with their specific message; those that must keep the file valid
(gzip of the good file, a BOM and CRLF line ends) must give exit 0.

One tiny run per task is trained once per module; each example copies it (or writes its own input) into a
fresh temporary folder, corrupts one file, and runs one command. Hypothesis is derandomized (the same cases
every run) and does not shrink (a failing case is printed as generated).

    RNNKIT_FUZZ_TABLE=FILE   write the markdown table of docs/robustness.md (cases, commands, failures) to FILE
    RNNKIT_FUZZ_SURVEY=1     record failures in that table instead of stopping at the first (to survey them)
    RNNKIT_FUZZ_LOG=FILE     append every case (target, command, corruption, exit code, first stderr line) to FILE
"""
from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import random
import shutil
import signal
import tempfile
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from rnnkit.cli import main

SURVEY = os.environ.get("RNNKIT_FUZZ_SURVEY") == "1"
TABLE: dict[tuple[str, str], Counter] = defaultdict(Counter)
FUZZ = settings(deadline=None, derandomize=True, database=None, phases=(Phase.explicit, Phase.generate),
                suppress_health_check=list(HealthCheck), print_blob=False)
MAX_LINE = 500  # one clear line: a 140 KB bad field is quoted cut short
HANG_SECONDS = 60  # a case that runs longer is a failure (e.g. a corrupted config asking for 10**9 epochs)


# ---- running one command ---------------------------------------------------------------------------------


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang(f"still running after {HANG_SECONDS} s")


def run_cli(argv: list[str]) -> tuple[int | str, str]:
    """(exit code, stderr) of `rnnkit ARGV`; the code is "traceback: ..." when main() raised."""
    out, err = io.StringIO(), io.StringIO()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_SECONDS)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 2
    except BaseException as e:  # noqa: BLE001 - every escaping exception is what this suite looks for
        tb = traceback.format_exception_only(type(e), e)[-1].strip()
        code = f"traceback: {tb[:300]}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return code, err.getvalue()


def check(target: str, command: str, argv: list[str], names: tuple[str, ...], kind: str, must: str | None = None,
          fragment: str | None = None) -> None:
    """Run ARGV and check the outcome (see the module docstring); `must` is None, "fail" or "pass"."""
    code, err = run_cli(argv)
    lines = err.strip().splitlines()
    problem = None
    if isinstance(code, str) or "Traceback" in err:
        problem = f"traceback ({code if isinstance(code, str) else lines[-1]})"
    elif code not in (0, 2):
        problem = f"exit {code}: {err.strip()[-300:]!r}"
    elif code == 0 and must == "fail":
        problem = "exit 0 where the corruption leaves no valid file"
    elif code == 2 and must == "pass":
        problem = f"exit 2 where the file is still valid: {err.strip()!r}"
    elif code == 2 and len(lines) != 1:
        problem = f"exit 2 with {len(lines)} stderr lines: {err.strip()[-300:]!r}"
    elif code == 2 and len(lines[0]) > MAX_LINE:
        problem = f"exit 2 with a line of {len(lines[0])} characters: {lines[0][:200]!r}..."
    elif code == 2 and not any(n in lines[0] for n in names):
        problem = f"the error does not name {' or '.join(names)}: {lines[0]!r}"
    elif code == 2 and fragment and fragment not in lines[0]:
        problem = f"the error does not say {fragment!r}: {lines[0]!r}"
    if os.environ.get("RNNKIT_FUZZ_LOG"):
        with open(os.environ["RNNKIT_FUZZ_LOG"], "a", encoding="utf-8") as log:
            log.write(json.dumps({"target": target, "command": command, "kind": kind, "code": str(code),
                                  "line": lines[0][:300] if lines else "", "problem": problem}) + "\n")
    row = TABLE[(target, command)]
    row["cases"] += 1
    row["exit 0" if code == 0 else "exit 2" if code == 2 else "other"] += 1
    if problem:
        row["tracebacks" if problem.startswith("traceback") else "failures"] += 1
        row.setdefault("first", f"{kind}: {problem}")  # type: ignore[arg-type]
        if not SURVEY:
            raise AssertionError(f"{kind} of {target}: rnnkit {' '.join(argv)}\n  {problem}")


@pytest.fixture(scope="module", autouse=True)
def _write_table():
    yield
    path = os.environ.get("RNNKIT_FUZZ_TABLE")
    if not path:
        return
    by_target: dict[str, Counter] = defaultdict(Counter)
    commands_of: dict[str, list[str]] = defaultdict(list)
    first: dict[str, str] = {}
    for (target, command), c in sorted(TABLE.items()):
        by_target[target].update({k: v for k, v in c.items() if k != "first"})
        commands_of[target].append(command)
        if "first" in c and target not in first:
            first[target] = f"{command}, {c['first']}".replace("|", "\\|")[:200]
    rows = ["| file | commands | cases | exit 0 | exit 2 | tracebacks | other failures | first failure |",
            "|---|---|---:|---:|---:|---:|---:|---|"]
    total = Counter()
    for target, c in by_target.items():
        rows.append(f"| {target} | {', '.join(commands_of[target])} | {c['cases']} | {c['exit 0']} | {c['exit 2']} | "
                    f"{c['tracebacks']} | {c['failures']} | {first.get(target, '')} |")
        total.update(c)
    rows.append(f"| **all** | {len(TABLE)} file-command pairs | {total['cases']} | {total['exit 0']} | "
                f"{total['exit 2']} | {total['tracebacks']} | {total['failures']} | |")
    Path(path).write_text("\n".join(rows) + "\n", encoding="utf-8")


# ---- tiny data and runs ----------------------------------------------------------------------------------

WORDS = "the cat dog sat on mat a red blue".split()


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5)))


def tiny_data() -> dict[str, bytes]:
    """A few dozen examples of every input format (bytes, as a file holds them)."""
    rng = random.Random(0)
    src = [_sentence(rng) for _ in range(40)]
    conllu = "".join("".join(f"{j + 1}\t{w}\t{w}\t{'N' if w in ('cat', 'dog', 'mat') else 'X'}\t_\t_\t0\t_\t_\t_\n"
                             for j, w in enumerate(_sentence(rng).split())) + "\n" for _ in range(30))
    conll = "".join("".join(f"{w} {'B-ANI' if w in ('cat', 'dog') else 'O'}\n"
                            for w in _sentence(rng).split()) + "\n" for _ in range(30))

    def tree() -> str:
        a, b, c = (rng.randint(0, 4) for _ in range(3))
        return f"({a} ({b} {rng.choice(WORDS)}) ({c} {rng.choice(WORDS)}))"

    npy = io.BytesIO()
    np.save(npy, np.random.default_rng(0).random((40, 4)).astype(np.float32))
    text = {
        "train.txt": "".join(_sentence(rng) + " " + _sentence(rng) + "\n" for _ in range(30)),
        "train.tsv": "".join(f"{_sentence(rng)}\t{rng.choice('ab')}\n" for _ in range(40)),
        "train.csv": "".join(f"{_sentence(rng)},{rng.choice('ab')}\n" for _ in range(40)),
        "sst.txt": "".join(tree() + "\n" for _ in range(30)),
        "train.conllu": conllu,
        "train.conll": conll,
        "series.csv": "t,y\n" + "".join(f"{i},{np.sin(i / 3):.4f}\n" for i in range(60)),
        "src.txt": "".join(s + "\n" for s in src),
        "tgt.txt": "".join(" ".join(reversed(s.split())) + "\n" for s in src),
        "feats.csv": "".join(",".join(f"{rng.random():.3f}" for _ in range(4)) + "\n" for _ in range(40)),
        "trees.txt": "".join(tree() + "\n" for _ in range(30)),
        "in.txt": "the cat sat\na dog\n",
    }
    return {**{k: v.encode() for k, v in text.items()}, "feats.npy": npy.getvalue()}


SMALL = ["--epochs", "1", "--hidden", "4", "--seed", "0", "--quiet"]


def train_argv(task: str, inputs: dict[str, Path], out: Path) -> list[str]:
    """`rnnkit train TASK` on the tiny data (`inputs` maps a tiny_data() name to its path)."""
    f = inputs.__getitem__
    args = {
        "lm": ["lm", "--data", f("train.txt"), "--level", "word", "--emb", "4", "--bptt", "8", "--batch-size", "4"],
        "classify": ["classify", "--data", f("train.tsv"), "--emb", "4", "--batch-size", "8"],
        "classify-csv": ["classify", "--data", f("train.csv"), "--emb", "4", "--batch-size", "8"],
        "classify-sst": ["classify", "--data", f("sst.txt"), "--format", "sst", "--emb", "4", "--batch-size", "8"],
        "tag": ["tag", "--data", f("train.conllu"), "--emb", "4", "--batch-size", "8"],
        "tag-conll": ["tag", "--data", f("train.conll"), "--format", "conll", "--emb", "4", "--batch-size", "8"],
        "forecast": ["forecast", "--data", f("series.csv"), "--target", "y", "--window", "4", "--batch-size", "8"],
        "seq2seq": ["seq2seq", "--src", f("src.txt"), "--tgt", f("tgt.txt"), "--emb", "4", "--batch-size", "8"],
        "one2seq": ["seq2seq", "--features", f("feats.csv"), "--tgt", f("tgt.txt"), "--emb", "4", "--batch-size", "8"],
        "one2seq-npy": ["seq2seq", "--features", f("feats.npy"), "--tgt", f("tgt.txt"), "--emb", "4",
                        "--batch-size", "8"],
        "tree": ["tree", "--data", f("trees.txt"), "--emb", "4", "--batch-size", "8"],
    }[task]
    return ["train", *map(str, args), *SMALL, "--out", str(out)]


RUN_TASKS = ("lm", "classify", "tag", "forecast", "seq2seq", "one2seq", "tree")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The tiny data files and one trained run per task (about a second each)."""
    root = tmp_path_factory.mktemp("fuzz")
    inputs = {}
    for name, data in tiny_data().items():
        inputs[name] = root / name
        inputs[name].write_bytes(data)
    runs = {}
    for task in RUN_TASKS:
        runs[task] = root / f"run-{task}"
        code, err = run_cli(train_argv(task, inputs, runs[task]))
        assert code == 0, (task, code, err)
    return inputs, runs


# ---- corruptions of an input file ------------------------------------------------------------------------

TEXT_KINDS = ("truncate", "flip", "random", "empty", "blank", "crlf-bom", "huge-field", "npz", "npy", "nul",
              "bad-utf8", "insert-text", "drop-line", "gz-good", "gz-truncate", "gz-flip", "gz-plain-named-gz")
NPY_KINDS = ("truncate", "flip", "random", "empty", "npz", "npy", "gz-good", "gz-truncate", "gz-flip")
MUST_FAIL = {"empty": "empty", "blank": "empty", "npz": "zip archive", "nul": "NUL byte", "bad-utf8": "not UTF-8",
             "gz-truncate": "gzip", "gz-plain-named-gz": "not a valid gzip"}
MUST_PASS = ("crlf-bom", "gz-good")


@dataclass(frozen=True)
class Corruption:
    kind: str
    at: int  # a position (taken modulo the length)
    count: int
    noise: bytes
    text: str


def corruptions(kinds) -> st.SearchStrategy[Corruption]:
    return st.builds(Corruption, st.sampled_from(kinds), st.integers(0, 10**6), st.integers(1, 4),
                     st.binary(min_size=1, max_size=200), st.text(max_size=30))


def _npz() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, a=np.zeros((2, 3)))
    return buf.getvalue()


def _npy_1d() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.zeros(3))
    return buf.getvalue()


def corrupt_bytes(c: Corruption, good: bytes) -> tuple[bytes, bool]:
    """(corrupted bytes, whether they are to be named .gz)."""
    n = len(good)
    line_starts = [0] + [i + 1 for i, b in enumerate(good) if b == 10 and i + 1 < n]
    start = line_starts[c.at % len(line_starts)]
    if c.kind.startswith("gz-"):
        packed = gzip.compress(good, mtime=0)
        if c.kind == "gz-truncate":
            return packed[: c.at % len(packed)], True
        if c.kind == "gz-flip":
            return _flip(packed, c), True
        return (good if c.kind == "gz-plain-named-gz" else packed), True
    out = {
        "truncate": lambda: good[: c.at % n],
        "flip": lambda: _flip(good, c),
        "random": lambda: c.noise,
        "empty": lambda: b"",
        "blank": lambda: b" \n\t\r\n\n",
        "crlf-bom": lambda: b"\xef\xbb\xbf" + good.replace(b"\n", b"\r\n"),
        "huge-field": lambda: good[:start] + b"x" * 140_000 + good[start:],  # over csv's 128 KiB field limit
        "npz": _npz,
        "npy": _npy_1d,
        "nul": lambda: good[:start] + b"a\x00b" + good[start:],
        "bad-utf8": lambda: good[:start] + b"\xff\xfe" + good[start:],
        "insert-text": lambda: good[:start] + c.text.encode("utf-8", "surrogatepass") + good[start:],
        "drop-line": lambda: good[:start] + good[start:].partition(b"\n")[2],
    }[c.kind]()
    return out, False


def _flip(data: bytes, c: Corruption) -> bytes:
    data = bytearray(data)
    rng = random.Random(c.at)
    for k in range(c.count):
        data[rng.randrange(len(data))] = c.noise[k % len(c.noise)]
    return bytes(data)


def expectation(c: Corruption, features: bool) -> tuple[str | None, str | None]:
    """(must, fragment) for check(); `features`: the file is one->seq vectors (.npy read by content)."""
    if c.kind in MUST_PASS:
        return "pass", None
    if c.kind == "npy":
        return "fail", "2-D array" if features else "NumPy .npy array"
    if c.kind in MUST_FAIL:
        return "fail", MUST_FAIL[c.kind]
    return None, None


# every input format that `rnnkit train <task>` reads: (train task, the tiny_data() file it reads)
TRAIN_INPUTS = [
    ("lm", "train.txt"), ("classify", "train.tsv"), ("classify-csv", "train.csv"), ("classify-sst", "sst.txt"),
    ("tag", "train.conllu"), ("tag-conll", "train.conll"), ("forecast", "series.csv"), ("seq2seq", "src.txt"),
    ("seq2seq", "tgt.txt"), ("one2seq", "feats.csv"), ("one2seq-npy", "feats.npy"), ("tree", "trees.txt"),
]


@pytest.mark.parametrize("task, name", TRAIN_INPUTS, ids=[f"{t}:{n}" for t, n in TRAIN_INPUTS])
@settings(FUZZ, max_examples=12)
@given(data=st.data())
def test_train_on_a_corrupted_input(world, task, name, data):
    inputs, _ = world
    npy_format = name.endswith(".npy")
    c = data.draw(corruptions(NPY_KINDS if npy_format else TEXT_KINDS), label="corruption")
    raw, gz = corrupt_bytes(c, inputs[name].read_bytes())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / (name + (".gz" if gz else ""))
        path.write_bytes(raw)
        argv = train_argv(task, {**inputs, name: path}, Path(tmp) / "run")
        must, fragment = expectation(c, name.startswith("feats"))
        check(f"input {name}", f"train {task}", argv, (path.name,), c.kind, must, fragment)


# the inputs of predict / eval / translate on a trained run: (run task, command, file, argv after RUN_DIR)
RUN_INPUTS = [
    ("lm", "eval", "train.txt", ["--data"]),
    ("classify", "predict", "in.txt", ["--input"]),
    ("classify", "eval", "train.tsv", ["--data"]),
    ("tag", "eval", "train.conllu", ["--data"]),
    ("tag", "predict", "in.txt", ["--input"]),
    ("forecast", "predict", "series.csv", ["--input"]),
    ("seq2seq", "eval", "src.txt", ["--tgt", "TGT", "--src"]),
    ("seq2seq", "translate", "src.txt", ["--input"]),
    ("one2seq", "translate", "feats.csv", ["--input"]),
    ("tree", "predict", "trees.txt", ["--input"]),
    ("tree", "eval", "trees.txt", ["--data"]),
]


@pytest.mark.parametrize("task, command, name, flags", RUN_INPUTS,
                         ids=[f"{t}-{c}:{n}" for t, c, n, _ in RUN_INPUTS])
@settings(FUZZ, max_examples=10)
@given(c=corruptions(TEXT_KINDS))
def test_commands_on_a_corrupted_input(world, task, command, name, flags, c):
    inputs, runs = world
    raw, gz = corrupt_bytes(c, inputs[name].read_bytes())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / (name + (".gz" if gz else ""))
        path.write_bytes(raw)
        args = [str(inputs["tgt.txt"]) if a == "TGT" else a for a in flags]
        argv = [command, str(runs[task]), *args, str(path)]
        must, fragment = expectation(c, name.startswith("feats"))
        check(f"input {name}", f"{command} ({task} run)", argv, (path.name,), c.kind, must, fragment)


# ---- corruptions of a run directory's files ----------------------------------------------------------------

WEIGHTS = ("weights.safetensors", "best.safetensors", "checkpoint.safetensors")
COMMON_FILES = ("config.json", *WEIGHTS, "trainer_state.json", "metrics.jsonl")
RUN_FILES = {
    "lm": ("vocab.json",), "classify": ("vocab.json",), "tag": ("vocab.json", "tags.json"),
    "forecast": ("normalizer.json",), "seq2seq": ("src_vocab.json", "tgt_vocab.json", "tokenizer.model"),
    "one2seq": ("tgt_vocab.json", "tokenizer.model"),
    "tree": ("vocab.json",),
}
TRAIN_TASK = {"one2seq": "seq2seq"}
# corruptions that leave no valid file, for the files every command but `report` reads: a truncated JSON object
# never parses; a vocabulary's keys are exactly format, unk, itos
_BROKEN_JSON = ("delete", "empty", "truncate", "random", "json-not-object")
MUST_FAIL_RUN = {"config.json": _BROKEN_JSON,
                 **{v: _BROKEN_JSON + ("json-add-key", "json-drop-key")
                    for v in ("vocab.json", "src_vocab.json", "tgt_vocab.json", "tags.json")}}
ANY_KINDS = ("delete", "empty", "truncate", "flip", "random")
KINDS_BY_SUFFIX = {
    ".json": ("json-type", "json-type", "json-drop-key", "json-add-key", "json-not-object"),
    ".jsonl": ("jsonl-cut-last", "jsonl-drop-step", "jsonl-type", "jsonl-garbage"),
    ".safetensors": ("st-header-len", "st-header", "st-header", "st-nan", "st-cut-data"),
}
# values of the wrong type (or out of range) put in place of a JSON value; small, so that a config that still
# loads cannot ask for hours of training
WRONG = (None, True, False, -1, 0, 7, 2.5, float("nan"), "", "x", "lstm", [], [1, "a"], {}, {"a": 1})


def commands(task: str, run: Path, inputs: dict[str, Path], tmp: Path) -> dict[str, list[str]]:
    """Every command that reads a run directory, for a run of TASK (resume last: it writes)."""
    f = lambda name: str(inputs[name])  # noqa: E731
    own = {
        "lm": {"eval": ["--data", f("train.txt")], "sample": ["--length", "5", "--seed", "0"]},
        "classify": {"predict": ["--input", f("in.txt")], "eval": ["--data", f("train.tsv")]},
        "tag": {"predict": ["--input", f("in.txt")], "eval": ["--data", f("train.conllu")]},
        "forecast": {"predict": ["--input", f("series.csv")], "eval": []},
        "seq2seq": {"translate": ["--input", f("src.txt")], "eval": ["--src", f("src.txt"), "--tgt", f("tgt.txt")]},
        "one2seq": {"translate": ["--input", f("feats.csv")],
                    "eval": ["--src", f("feats.csv"), "--tgt", f("tgt.txt")]},
        "tree": {"predict": ["--input", f("trees.txt")], "eval": ["--data", f("trees.txt")]},
    }[task]
    out = {verb: [verb, str(run), *args] for verb, args in own.items()}
    out["report"] = ["report", str(run), "--output", str(tmp / "page.html")]
    # one more epoch, so that resume reads the checkpoint, the trainer state and the history and trains on
    out["train --resume"] = ["train", TRAIN_TASK.get(task, task), "--resume", str(run), "--epochs", "2", "--quiet"]
    return out


@dataclass(frozen=True)
class RunCorruption:
    kind: str
    at: int
    count: int
    noise: bytes
    value: object


def run_corruptions(name: str) -> st.SearchStrategy[RunCorruption]:
    kinds = ANY_KINDS + KINDS_BY_SUFFIX.get(Path(name).suffix, ())  # .model (sentencepiece): bytes only
    return st.builds(RunCorruption, st.sampled_from(kinds), st.integers(0, 10**6), st.integers(1, 4),
                     st.binary(min_size=1, max_size=200), st.sampled_from(WRONG))


def _nodes(obj, path=()):
    """Paths (key tuples) of every value inside a JSON value."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        yield path + (key,)
        yield from _nodes(value, path + (key,))


def _get(obj, path):
    for key in path:
        obj = obj[key]
    return obj


def mutate_json(obj, c: RunCorruption, kind: str):
    """`obj` with one value replaced (json-type), one key dropped or added, or wrapped in a list."""
    if kind == "json-not-object":
        return [obj]
    paths = list(_nodes(obj))
    if kind == "json-add-key":
        dicts = [()] + [p for p in paths if isinstance(_get(obj, p), dict)]
        _get(obj, dicts[c.at % len(dicts)])["zz_unknown_key"] = c.value
        return obj
    if kind == "json-drop-key":
        paths = [p for p in paths if isinstance(_get(obj, p[:-1]), dict)]
    if not paths:
        return c.value
    path = paths[c.at % len(paths)]
    parent = _get(obj, path[:-1])
    if kind == "json-drop-key":
        del parent[path[-1]]
    else:
        parent[path[-1]] = c.value
    return obj


def corrupt_run_file(path: Path, c: RunCorruption) -> None:
    good = path.read_bytes()
    if c.kind == "delete":
        path.unlink()
        return
    if c.kind in ("empty", "truncate", "flip", "random"):
        new = {"empty": b"", "truncate": good[: c.at % max(len(good), 1)], "flip": _flip(good, c) if good else b"x",
               "random": c.noise}[c.kind]
    elif c.kind.startswith("json-"):
        new = json.dumps(mutate_json(json.loads(good), c, c.kind)).encode()
    elif c.kind.startswith("jsonl-"):
        new = _corrupt_jsonl(good.decode().splitlines(), c).encode()
    else:
        new = _corrupt_safetensors(good, c)
    path.write_bytes(new)


def _corrupt_jsonl(lines: list[str], c: RunCorruption) -> str:
    i = c.at % len(lines)
    if c.kind == "jsonl-cut-last":  # a line cut short, as by a kill during its write
        return "\n".join(lines[:-1] + [lines[-1][: c.at % len(lines[-1])]])
    if c.kind == "jsonl-garbage":
        lines.insert(i, "{not json" if c.count % 2 else "\x00\x01")
    else:
        record = json.loads(lines[i])
        if c.kind == "jsonl-drop-step":
            record.pop("step", None)
        else:
            record = mutate_json(record, c, "json-type")
        lines[i] = json.dumps(record)
    return "\n".join(lines) + "\n"


def _corrupt_safetensors(good: bytes, c: RunCorruption) -> bytes:
    n = int.from_bytes(good[:8], "little")
    header, data = json.loads(good[8 : 8 + n]), good[8 + n :]
    if c.kind == "st-header-len":
        return (n + c.at % 7 + 1 if c.count % 2 else 1 << 62).to_bytes(8, "little") + good[8:]
    if c.kind == "st-cut-data":
        return good[: 8 + n + c.at % max(len(data), 1)]
    if c.kind == "st-nan":  # a NaN as the first value of one float tensor (the file stays well-formed)
        names = sorted(k for k, v in header.items() if k != "__metadata__" and v["dtype"] == "F32"
                       and v["data_offsets"][1] > v["data_offsets"][0])
        start = header[names[c.at % len(names)]]["data_offsets"][0]
        data = data[:start] + b"\x00\x00\xc0\x7f" + data[start + 4 :]
        return good[: 8 + n] + data
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    name = sorted(tensors)[c.at % len(tensors)]
    field = ("dtype", "shape", "data_offsets")[c.count % 3]
    header[name][field] = c.value if c.count < 3 else {"dtype": "F16", "shape": [10**9], "data_offsets": [0, 8]}[field]
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + data


def test_every_file_of_a_run_directory_is_fuzzed(world):
    _, runs = world
    for task, run in runs.items():
        present = {p.name for p in run.iterdir()}
        assert present == set(COMMON_FILES + RUN_FILES[task]), (task, sorted(present))


RUN_CASES = [(task, name) for task in RUN_TASKS for name in COMMON_FILES + RUN_FILES[task]]


@pytest.mark.parametrize("task, name", RUN_CASES, ids=[f"{t}:{n}" for t, n in RUN_CASES])
@settings(FUZZ, max_examples=6)
@given(data=st.data())
def test_commands_on_a_corrupted_run_file(world, task, name, data):
    inputs, runs = world
    c = data.draw(run_corruptions(name), label="corruption")
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        shutil.copytree(runs[task], run)
        corrupt_run_file(run / name, c)
        cmds = commands(task, run, inputs, Path(tmp))
        verb = data.draw(st.sampled_from(sorted(cmds)), label="command")
        # a config or vocabulary that no longer fits the weights may be reported as the weights' mismatch; a
        # run without config.json as "RUN: not a run directory"
        names = (name, ".safetensors") if name.endswith(".json") and name != "trainer_state.json" else (name,)
        names += (f"{run}: ",) if name == "config.json" and c.kind == "delete" else ()
        must = "fail" if verb != "report" and c.kind in MUST_FAIL_RUN.get(name, ()) else None
        check(f"run: {name}", verb, cmds[verb], names, f"{task} run, {c.kind}", must)
