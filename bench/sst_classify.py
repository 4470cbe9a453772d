"""SST sentence classification with a BiLSTM and no pretrained vectors: root-label accuracy on the dev split,
binary (neutral dropped) and fine-grained (5 classes), next to two baselines measured in the same run on the
same tokens: the majority class of the training labels, and a bag-of-words logistic regression (scikit-learn)
trained on the same examples as the BiLSTM.

    python bench/sst_classify.py --data /work/shared/data/sst --threads 1            # both label sets
    python bench/sst_classify.py --data /work/shared/data/sst --labels binary --epochs 4

Issue goal (dev, no GloVe): >= 82 binary, >= 42 fine. Reference with GloVe (Tai et al. 2015, test):
LSTM 84.9 / 46.4, BiLSTM 87.5 / 49.1.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from rnnkit.tasks import classify
from rnnkit.train import TrainConfig


def baselines(corpus: classify.ClassifyCorpus) -> dict:
    """Majority class and bag-of-words logistic regression, trained on corpus.train, scored on corpus.valid."""
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression

    def bow(examples):
        rows, cols = [], []
        for r, (ids, _) in enumerate(examples):
            rows += [r] * len(ids)
            cols += ids
        return csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(examples), len(corpus.task.vocab)))

    y_train = np.array([y for _, y in corpus.train])
    y_valid = np.array([y for _, y in corpus.valid])
    majority = Counter(y_train.tolist()).most_common(1)[0][0]
    lr = LogisticRegression(max_iter=1000, C=1.0).fit(bow(corpus.train), y_train)
    return {"majority": float((y_valid == majority).mean()),
            "bow_logreg": float((lr.predict(bow(corpus.valid)) == y_valid).mean())}


def run(args, labels: str) -> dict:
    data_dir = Path(args.data)
    data = classify.ClassifyDataConfig(train=str(data_dir / "train.txt.gz"), valid=str(data_dir / "dev.txt.gz"),
                                       format="sst", sst_labels=labels, phrases=args.phrases, lower=args.lower,
                                       batch_size=args.batch_size, eval_batch_size=256)
    corpus = classify.load_corpus(data)
    base = baselines(corpus)
    print(f"[{labels}] {len(corpus.train):,} training examples, {len(corpus.valid):,} dev sentences, "
          f"vocabulary {len(corpus.task.vocab):,}; majority {base['majority']:.4f}, "
          f"bag-of-words logistic regression {base['bow_logreg']:.4f}", flush=True)
    model = classify.ClassifierConfig(vocab_size=len(corpus.task.vocab), num_classes=len(corpus.task.labels),
                                      cell="lstm", layers=args.layers, hidden=args.hidden, emb=args.emb,
                                      bidirectional=True, pooling=args.pooling, dropout=args.dropout)
    train = TrainConfig(epochs=args.epochs, optimizer="adam", lr=args.lr, weight_decay=args.weight_decay,
                        clip=5.0, seed=args.seed, device="cpu", progress=False, tensorboard=False, log_every=500)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(args.out or tmp) / labels
        print(f"[{labels}] run directory {run_dir} (metrics.jsonl grows every epoch)", flush=True)
        history = classify.fit(run_dir, data, model, train, corpus, overwrite=True)
    minutes = (time.perf_counter() - start) / 60
    for h in history:
        print(f"[{labels}] epoch {h['epoch']}: train loss {h['train']['loss']:.4f}, dev accuracy "
              f"{h['valid']['accuracy']:.4f}, macro-F1 {h['valid']['macro_f1']:.4f}", flush=True)
    best = max(history, key=lambda h: h["valid"]["accuracy"])
    return {"labels": labels, "examples": len(corpus.train), **base, "bilstm": best["valid"]["accuracy"],
            "best_epoch": best["epoch"], "minutes": minutes}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="folder with train.txt.gz and dev.txt.gz (SST trees)")
    p.add_argument("--labels", choices=["binary", "fine", "both"], default="both")
    p.add_argument("--no-phrases", dest="phrases", action="store_false", help="train on root labels only")
    p.add_argument("--no-lower", dest="lower", action="store_false")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--hidden", type=int, default=150)
    p.add_argument("--emb", type=int, default=300)
    p.add_argument("--pooling", choices=classify.POOLINGS, default="max")
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", help="keep the run directories here (default: a temporary folder)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s); " + " ".join(sys.argv[1:]), flush=True)
    results = [run(args, labels) for labels in (["binary", "fine"] if args.labels == "both" else [args.labels])]
    print("\n| labels | training examples | majority | BoW logreg | BiLSTM (best epoch) | goal | minutes |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        goal = 0.82 if r["labels"] == "binary" else 0.42
        print(f"| {r['labels']} | {r['examples']:,} | {100 * r['majority']:.1f} | {100 * r['bow_logreg']:.1f} | "
              f"{100 * r['bilstm']:.1f} ({r['best_epoch']}) | >= {100 * goal:.0f} | {r['minutes']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
