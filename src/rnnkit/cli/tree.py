"""`rnnkit train tree`, and `rnnkit predict` / `rnnkit eval` for tree runs.

Parses arguments and calls the library (`rnnkit.tasks.tree`).
"""
from __future__ import annotations

import sys

from rnnkit.cli.common import add_train_options, positive_int, print_history, print_metrics, train_config

TREE_CELLS = ("tree-lstm", "child-sum", "recursive")  # rnnkit.nn.tree.TREE_CELLS, without importing torch


def register(train_sub, sub) -> None:
    p = train_sub.add_parser("tree", help="sentiment over parse trees (SST): Tree-LSTM or recursive NN",
                             description="Train a tree model on bracketed trees, one per line, e.g. "
                                         "(3 (2 It) (4 (2 's) (4 great))); .gz files are read as well.")
    p.add_argument("--data", required=True, help="training trees (SST train.txt or .txt.gz)")
    p.add_argument("--valid", help="validation trees (the best checkpoint is chosen by their root accuracy)")
    p.add_argument("--cell", choices=TREE_CELLS, default="tree-lstm")
    p.add_argument("--classes", type=int, choices=[5, 2], default=5,
                   help="5: fine-grained; 2: binary (neutral roots dropped, neutral nodes ignored)")
    p.add_argument("--supervision", choices=["nodes", "root"], default="nodes",
                   help="loss at every labelled node (phrase level) or at the root only")
    p.add_argument("--emb", type=positive_int, default=300, help="word embedding size")
    p.add_argument("--hidden", type=positive_int, default=150)
    p.add_argument("--dropout", type=float, default=0.5, help="on the embeddings and before the softmax")
    p.add_argument("--lower", action="store_true", help="lowercase the words")
    p.add_argument("--min-freq", type=positive_int, default=1, help="rarer training words become <unk>")
    p.add_argument("--eval-batch-size", type=positive_int, default=100)
    add_train_options(p, epochs=10, optimizer="adam", batch_size=25, out="runs/tree",
                      clip_help="max gradient norm (loss averaged over nodes)")
    p.set_defaults(run=run_train_tree)


def run_train_tree(args) -> int:
    from rnnkit.tasks import tree

    if args.resume:
        print_history(tree.resume(args.resume))
        return 0
    data = tree.TreeDataConfig(train=args.data, valid=args.valid, classes=args.classes, lower=args.lower,
                               min_freq=args.min_freq, batch_size=args.batch_size,
                               eval_batch_size=args.eval_batch_size)
    model = {"cell": args.cell, "emb": args.emb, "hidden": args.hidden, "dropout": args.dropout,
             "supervision": args.supervision}
    print_history(tree.fit(args.out, data, model, train_config(args)))
    print(f"run saved in {args.out}", file=sys.stderr)
    return 0


def add_predict_args(p) -> None:
    """`rnnkit predict RUN_DIR --input trees.txt [--nodes]`: one line per tree."""
    p.add_argument("--input", required=True, help="bracketed trees, one per line (their labels are ignored)")
    p.add_argument("--nodes", action="store_true",
                   help="print every node's label: the tree with predicted labels instead of the root label")
    p.add_argument("--weights", choices=["best", "last"], default="best")
    p.add_argument("--batch-size", type=positive_int, default=100)


def predict(args) -> int:
    from rnnkit.tasks import tree

    run = tree.load_run(args.run_dir, weights=args.weights)
    for t in tree.predict_trees(run, tree.read_input_trees(args.input), args.batch_size):
        print(t if args.nodes else t.label)
    return 0


def add_eval_args(p) -> None:
    """`rnnkit eval RUN_DIR --data dev.txt`: loss, root accuracy and all-node accuracy."""
    p.add_argument("--data", required=True, help="labelled trees, one per line")
    p.add_argument("--batch-size", type=positive_int, default=100)


def evaluate(args) -> int:
    from rnnkit.tasks import tree

    metrics = tree.evaluate_file(args.run_dir, args.data, args.batch_size)
    print_metrics(metrics)
    return 0
