"""SST sentiment with tree models: dev root accuracy (fine-grained 5-class and binary) and training time of the
recursive NN and the binary Tree-LSTM, and nodes/s of the level-batched evaluator against node-by-node
evaluation, measured in the same run.

    .venv/bin/python bench/sst_tree.py --data /work/shared/data/sst --threads 1             # everything
    .venv/bin/python bench/sst_tree.py --data /work/shared/data/sst --runs tree-lstm:5 --epochs 10
    .venv/bin/python bench/sst_tree.py --data /work/shared/data/sst --speed-only

Training (each run: `rnnkit.tasks.tree.fit`, the shared Trainer): random word vectors (no pretrained
embeddings), lowercased words, words seen once -> <unk>, supervision at every node, Adagrad (Tai et al. 2015),
dropout on embeddings and before the softmax; the reported accuracy is the best epoch's dev root accuracy (the
checkpoint `rnnkit predict` uses). Speed: forward + backward of a tree-LSTM / recursive encoder over batches of
25 dev trees, level-batched vs. one node at a time, interleaved repeats, medians (bench/_timing.py).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from _timing import add_common_args, apply_threads, compare, machine_line  # bench/ is on sys.path when run

from rnnkit.data.trees import read_trees
from rnnkit.nn.tree import TreeEncoder, TreeStructure, children_lists
from rnnkit.tasks import tree
from rnnkit.train import TrainConfig

PAPER = {("tree-lstm", 5): 43.9, ("tree-lstm", 2): 82.0}  # Tai et al. 2015, test, random vectors


def train_one(args, cell: str, classes: int) -> dict:
    data_dir = Path(args.data)
    data = tree.TreeDataConfig(train=str(data_dir / "train.txt.gz"), valid=str(data_dir / "dev.txt.gz"),
                               classes=classes, lower=True, min_freq=args.min_freq, batch_size=args.batch_size)
    model = {"cell": cell, "emb": args.emb, "hidden": args.hidden, "dropout": args.dropout}
    config = TrainConfig(epochs=args.epochs, optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay,
                         seed=args.seed, device="cpu", progress=False, tensorboard=False)
    start = time.perf_counter()
    history = tree.fit(Path(args.out) / f"{cell}-{classes}", data, model, config, overwrite=True)
    minutes = (time.perf_counter() - start) / 60
    for h in history:
        print(f"  {cell} {classes}-class epoch {h['epoch']}: train loss {h['train']['loss']:.4f}, dev root "
              f"{100 * h['valid']['root_acc']:.2f}, dev nodes {100 * h['valid']['node_acc']:.2f}", flush=True)
    best = max(history, key=lambda h: h["valid"]["root_acc"])
    return {"cell": cell, "classes": classes, "root": 100 * best["valid"]["root_acc"],
            "nodes": 100 * best["valid"]["node_acc"], "epoch": best["epoch"], "epochs": len(history),
            "minutes": minutes}


def speed(args) -> list[dict]:
    trees = read_trees(Path(args.data) / "dev.txt.gz")[: args.speed_trees]
    rows = []
    for cell in ("tree-lstm", "recursive"):
        torch.manual_seed(0)
        encoder = TreeEncoder(cell, args.emb, args.hidden)
        batches = []
        for i in range(0, len(trees), 25):
            s = TreeStructure.build([children_lists(t) for t in trees[i: i + 25]], encoder.arity)
            batches.append((s, torch.randn(s.num_leaves, args.emb, requires_grad=True)))
        nodes = sum(s.num_nodes for s, _ in batches)

        def run(node_by_node: bool, encoder=encoder, batches=batches):
            def go():
                for s, x in batches:
                    h, _ = encoder(x, s, node_by_node=node_by_node)
                    h.sum().backward()
            return go

        times = compare({"level": run(False), "node": run(True)}, repeats=args.repeats, warmup=args.warmup)
        rows.append({"cell": cell, "nodes": nodes, "level": nodes / times["level"], "node": nodes / times["node"]})
        print(f"  speed {cell}: level-batched {nodes / times['level']:,.0f} nodes/s, node-by-node "
              f"{nodes / times['node']:,.0f} nodes/s, ratio {times['node'] / times['level']:.1f}x", flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder with train.txt.gz and dev.txt.gz (SST PTB trees)")
    p.add_argument("--runs", default="tree-lstm:5,tree-lstm:2,recursive:5,recursive:2",
                   help="comma-separated cell:classes training runs ('' for none)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--emb", type=int, default=300)
    p.add_argument("--hidden", type=int, default=150)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--min-freq", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=25)
    p.add_argument("--optimizer", default="adagrad")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="/tmp/rnnkit-bench-tree")
    p.add_argument("--speed-only", action="store_true")
    p.add_argument("--speed-trees", type=int, default=100, help="dev trees in the speed comparison")
    add_common_args(p, repeats=5)
    args = p.parse_args()
    apply_threads(args.threads)
    print(f"# {machine_line()}", flush=True)
    speed_rows = speed(args)
    results = []
    if not args.speed_only:
        for spec in filter(None, args.runs.split(",")):
            cell, classes = spec.split(":")
            results.append(train_one(args, cell, int(classes)))
            r = results[-1]
            print(f"  done {cell} {classes}-class: best dev root {r['root']:.2f} (epoch {r['epoch']}), "
                  f"{r['minutes']:.1f} min", flush=True)
    print("\n| model | classes | dev root acc % | dev all-node acc % | best epoch / epochs | training min | "
          "Tai et al. 2015 (test) |")
    print("| --- | --- | ---: | ---: | --- | ---: | ---: |")
    for r in results:
        paper = PAPER.get((r["cell"], r["classes"]))
        print(f"| {r['cell']} | {r['classes']} | {r['root']:.1f} | {r['nodes']:.1f} | {r['epoch']} / {r['epochs']} | "
              f"{r['minutes']:.1f} | {'' if paper is None else paper} |")
    print("\n| encoder | nodes | level-batched nodes/s | node-by-node nodes/s | speed-up |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in speed_rows:
        print(f"| {r['cell']} | {r['nodes']} | {r['level']:,.0f} | {r['node']:,.0f} | {r['level'] / r['node']:.1f}x |")


if __name__ == "__main__":
    main()
