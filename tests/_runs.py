"""Tiny data and command lines for every task (and the lab), for the lifecycle contract tests.

`make_data(task, folder)` writes a few dozen examples of the task's format and returns the `rnnkit train`
arguments (after the task name) and the command that uses a trained run ("use": predict, sample, translate
or report), with RUN standing for the run directory. Each run trains in well under a second.
"""
from __future__ import annotations

import random
from pathlib import Path

TASKS = ("lm", "classify", "tag", "forecast", "seq2seq", "tree", "lab")
WORDS = ["red", "green", "blue", "cat", "dog", "runs", "sleeps", "a", "the"]
COMMON = ["--epochs", "2", "--device", "cpu", "--seed", "3", "--quiet"]


def _lm(folder: Path, rng: random.Random):
    path = folder / "text.txt"
    path.write_text("".join(rng.choice("abcd ") for _ in range(600)), encoding="utf-8")
    train = ["--data", str(path), "--hidden", "8", "--layers", "1", "--bptt", "8", "--batch-size", "4"]
    return train, ["sample", "RUN", "--length", "5", "--seed", "0"]


def _classify(folder: Path, rng: random.Random):
    rows = []
    for _ in range(60):
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 5))]
        rows.append(" ".join(words) + "\t" + ("pos" if "cat" in words else "neg"))
    (folder / "train.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (folder / "texts.txt").write_text("red cat\nblue dog runs\n", encoding="utf-8")
    train = ["--data", str(folder / "train.tsv"), "--hidden", "6", "--emb", "4", "--batch-size", "16"]
    return train, ["predict", "RUN", "--input", str(folder / "texts.txt")]


def _tag(folder: Path, rng: random.Random):
    lines = []
    for k in range(30):
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 5))]
        lines.append(f"# sent_id = {k}\n")
        lines += [f"{i}\t{w}\t{w}\t{'NOUN' if w in WORDS[3:5] else 'X'}\t_\t_\t0\tdep\t_\t_\n"
                  for i, w in enumerate(words, 1)]
        lines.append("\n")
    (folder / "train.conllu").write_text("".join(lines), encoding="utf-8")
    (folder / "texts.txt").write_text("red cat\nthe dog sleeps\n", encoding="utf-8")
    train = ["--data", str(folder / "train.conllu"), "--hidden", "6", "--emb", "4", "--batch-size", "8"]
    return train, ["predict", "RUN", "--input", str(folder / "texts.txt")]


def _forecast(folder: Path, rng: random.Random):
    import math

    rows = ["t,y"] + [f"{i},{10 + 5 * math.sin(i * math.pi / 6) + rng.gauss(0, 1):.3f}" for i in range(90)]
    (folder / "series.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    train = ["--data", str(folder / "series.csv"), "--target", "y", "--window", "6", "--horizon", "2",
             "--season", "12", "--hidden", "4", "--batch-size", "8"]
    return train, ["predict", "RUN", "--input", str(folder / "series.csv")]


def _seq2seq(folder: Path, rng: random.Random):
    src = [" ".join(rng.choice("abcde") for _ in range(rng.randint(1, 4))) for _ in range(40)]
    (folder / "train.src").write_text("\n".join(src) + "\n", encoding="utf-8")
    (folder / "train.tgt").write_text("\n".join(" ".join(reversed(s.split())) for s in src) + "\n",
                                      encoding="utf-8")
    train = ["--src", str(folder / "train.src"), "--tgt", str(folder / "train.tgt"), "--hidden", "8", "--emb", "6",
             "--batch-size", "8"]
    return train, ["translate", "RUN", "--input", str(folder / "train.src")]


def _tree(folder: Path, rng: random.Random):
    def leaf():
        w = rng.choice(WORDS)
        return f"({3 if w == 'cat' else 1} {w})"

    trees = [f"(2 {leaf()} (2 {leaf()} {leaf()}))" for _ in range(40)]
    (folder / "trees.txt").write_text("\n".join(trees) + "\n", encoding="utf-8")
    train = ["--data", str(folder / "trees.txt"), "--emb", "4", "--hidden", "4", "--batch-size", "10"]
    return train, ["predict", "RUN", "--input", str(folder / "trees.txt")]


def _lab(folder: Path, rng: random.Random):
    train = ["--length", "5", "--hidden", "4", "--batches-per-epoch", "3", "--valid-size", "20", "--test-size", "20",
             "--batch-size", "10", "--diagnostics-every", "0"]
    return train, ["report", "RUN"]


BUILDERS = {"lm": _lm, "classify": _classify, "tag": _tag, "forecast": _forecast, "seq2seq": _seq2seq,
            "tree": _tree, "lab": _lab}


def make_data(task: str, folder: Path) -> tuple[list[str], list[str]]:
    folder.mkdir(parents=True, exist_ok=True)
    return BUILDERS[task](folder, random.Random(0))


def train_argv(task: str, args: list[str], out: Path, *extra: str) -> list[str]:
    """`rnnkit train TASK ...` (the lab: `rnnkit lab adding ...`) into `out`."""
    head = ["lab", "adding"] if task == "lab" else ["train", task]
    return [*head, *args, *COMMON, "--out", str(out), *extra]


def use_argv(use: list[str], run: Path) -> list[str]:
    return [str(run) if a == "RUN" else a for a in use]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative path -> bytes): a run compared byte for byte."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
