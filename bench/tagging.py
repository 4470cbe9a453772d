"""Sequence tagging on the dev splits, each next to a simple baseline measured in the same run.

1. UD English-EWT UPOS accuracy: BiLSTM tagger with words only, then with the character BiLSTM
   (goals: >= 93.0 and >= 94.5; bilty reports 94.6 on UD 1.3 English). Baseline: each word's most frequent
   training tag, unknown words get the most frequent tag overall.
2. WNUT-17 entity F1: BiLSTM-CRF with characters, lower-cased words, word dropout α = 2 (goal: >= 35 on
   dev). Baseline: a lexicon of the entities seen in training (each with its most frequent type), matched
   greedily, longest first, on dev.

    python bench/tagging.py --data /work/shared/data --threads 1                 # all three runs
    python bench/tagging.py --data /work/shared/data --only wnut --ner-epochs 2  # a quick check

Each run trains with the shared Trainer (Adam lr 5e-3, halved after every epoch whose dev metric does not
improve, gradient norm clipped at 5) and reports the best epoch's dev
metric (the Trainer keeps best.safetensors by the dev metric) and its wall time.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import torch
from seqeval.metrics import f1_score

from rnnkit.data.conll import read_conll, read_conllu
from rnnkit.tasks import tag
from rnnkit.train import TrainConfig

RUNS = ("pos-words", "pos-chars", "wnut")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="folder with ud-english-ewt/ and wnut17/")
    p.add_argument("--only", choices=RUNS, action="append", help="run only these (repeatable)")
    p.add_argument("--pos-epochs", type=int, default=8)
    p.add_argument("--ner-epochs", type=int, default=12)
    p.add_argument("--ner-word-dropout", type=float, default=2.0, help="WNUT: α of p(<unk>) = α / (α + count)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="keep the run directories here (default: a temporary folder)")
    return p.parse_args(argv)


def most_frequent_tag_baseline(train, dev) -> float:
    """Accuracy of tagging each word with its most frequent training tag (unknown: the most frequent tag)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for s in train:
        for w, t in zip(s.words, s.tags):
            counts[w][t] += 1
    overall = Counter(t for s in train for t in s.tags).most_common(1)[0][0]
    best = {w: c.most_common(1)[0][0] for w, c in counts.items()}
    pairs = [(best.get(w, overall), t) for s in dev for w, t in zip(s.words, s.tags)]
    return sum(p == t for p, t in pairs) / len(pairs)


def lexicon_baseline(train, dev) -> float:
    """Entity F1 (seqeval) of matching the training entities' token sequences (lower-cased) on dev."""
    from seqeval.metrics.sequence_labeling import get_entities

    types: dict[tuple, Counter] = defaultdict(Counter)
    for s in train:
        for kind, start, end in get_entities(s.tags):
            types[tuple(w.lower() for w in s.words[start: end + 1])][kind] += 1
    lexicon = {k: c.most_common(1)[0][0] for k, c in types.items()}
    longest = max(len(k) for k in lexicon)
    pred = []
    for s in dev:
        words, tags, i = [w.lower() for w in s.words], ["O"] * len(s.words), 0
        while i < len(words):
            for n in range(min(longest, len(words) - i), 0, -1):
                kind = lexicon.get(tuple(words[i: i + n]))
                if kind is not None:
                    tags[i: i + n] = [f"B-{kind}"] + [f"I-{kind}"] * (n - 1)
                    i += n
                    break
            else:
                i += 1
        pred.append(tags)
    return f1_score([s.tags for s in dev], pred)


def train_run(name: str, data: tag.TagDataConfig, options: dict, train: TrainConfig, out: Path) -> dict:
    corpus = tag.load_corpus(data)
    config = tag.model_config_for(corpus, data.metric, **options)
    print(f"[{name}] train {len(corpus.train)} sentences, dev {len(corpus.valid)}, vocabulary {len(corpus.words)}, "
          f"tags {len(corpus.tags)}, chars {len(corpus.chars) if corpus.chars else 0}; model {options}", flush=True)
    start = time.perf_counter()
    history = tag.fit(out / name, data, config, train, corpus, overwrite=True)
    seconds = time.perf_counter() - start
    key = "f1" if data.metric == "entity" else "accuracy"
    for h in history:
        print(f"[{name}] epoch {h['epoch']}: train loss {h['train']['loss']:.4f}, dev "
              + ", ".join(f"{k} {v:.4f}" for k, v in h["valid"].items()), flush=True)
    best = max(history, key=lambda h: h["valid"][key])
    return {"run": name, "metric": key, "best": 100 * best["valid"][key], "best_epoch": best["epoch"],
            "epochs": len(history), "minutes": seconds / 60}


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    runs = args.only or list(RUNS)
    root = Path(args.data)
    ewt = root / "ud-english-ewt"
    wnut = root / "wnut17"
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="rnnkit-tagging-"))
    print(f"machine: {sys.platform}, torch {torch.__version__}, threads {torch.get_num_threads()}; runs in {out}")
    results = []
    adam = dict(optimizer="adam", lr=5e-3, clip=5.0, lr_schedule="plateau", lr_factor=0.5, lr_patience=0,
                progress=False, tensorboard=False, device="cpu", seed=0)
    if any(r.startswith("pos") for r in runs):
        pos = dict(train=str(ewt / "en_ewt-ud-train.conllu.gz"), valid=str(ewt / "en_ewt-ud-dev.conllu.gz"),
                   format="conllu", column="upos")
        acc = most_frequent_tag_baseline(read_conllu(pos["train"]), read_conllu(pos["valid"]))
        print(f"[pos] baseline (most frequent tag per word): dev accuracy {100 * acc:.2f}", flush=True)
        results.append({"run": "pos-baseline", "metric": "accuracy", "best": 100 * acc})
        for name, chars in (("pos-words", False), ("pos-chars", True)):
            if name in runs:
                results.append(train_run(name, tag.TagDataConfig(**pos, chars=chars),
                                         dict(dropout=0.33, hidden=100, emb=100),
                                         TrainConfig(epochs=args.pos_epochs, **adam), out))
    if "wnut" in runs:
        ner = dict(train=str(wnut / "wnut17train.conll"), valid=str(wnut / "emerging.dev.conll"), format="conll",
                   scheme="bio", chars=True, lower=True)
        f1 = lexicon_baseline(read_conll(ner["train"]), read_conll(ner["valid"]))
        print(f"[wnut] baseline (training-entity lexicon): dev entity F1 {100 * f1:.2f}", flush=True)
        results.append({"run": "wnut-baseline", "metric": "f1", "best": 100 * f1})
        results.append(train_run(f"wnut-a{args.ner_word_dropout:g}", tag.TagDataConfig(**ner, batch_size=16),
                                 dict(dropout=0.5, hidden=100, emb=100, crf=True, word_dropout=args.ner_word_dropout),
                                 TrainConfig(epochs=args.ner_epochs, **adam), out))
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
