"""`rnnkit train tree`, and `rnnkit predict` / `rnnkit eval` for tree runs.

Parses arguments and calls the library (`rnnkit.tasks.tree`).
"""
from __future__ import annotations

from rnnkit.cli.common import add_train_command, positive_int, print_metrics, run_train


def register(train_sub, sub) -> None:
    from rnnkit.tasks.tree import SPEC

    p = add_train_command(train_sub, SPEC, help="sentiment over parse trees (SST): Tree-LSTM or recursive NN",
                          description="Train a tree model on bracketed trees, one per line, e.g. "
                                      "(3 (2 It) (4 (2 's) (4 great))); .gz files are read as well.")
    p.set_defaults(run=lambda args: run_train(args, SPEC, _describe))


def _describe(corpus) -> str:
    return (f"data: {len(corpus.train):,} trees, valid: {len(corpus.valid or []):,} trees, vocabulary "
            f"{len(corpus.task.vocab):,}")


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
