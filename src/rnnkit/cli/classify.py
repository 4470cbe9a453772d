"""`rnnkit train classify` and, for classify runs, `rnnkit predict` / `rnnkit eval`.

Parses arguments and calls the library (`rnnkit.tasks.classify`).
"""
from __future__ import annotations

import json
import sys

from rnnkit.cli.common import add_train_command, positive_int, run_train


def register(train_sub, sub) -> None:
    from rnnkit.tasks.classify import SPEC

    p = add_train_command(train_sub, SPEC, help="train a sequence classifier (TSV/CSV or SST trees)")
    p.set_defaults(run=lambda args: run_train(args, SPEC, _describe, _print_best))


def _describe(corpus) -> str:
    task = corpus.task
    line = (f"data: {len(corpus.train):,} examples, valid: {corpus.valid_source} ({len(corpus.valid):,}), "
            f"vocabulary {len(task.vocab):,}, labels {', '.join(task.labels)}")
    if corpus.vectors is not None:
        line += (f"; vectors: {corpus.vectors.num_found:,} of {len(task.vocab):,} words found "
                 f"({corpus.vectors.dim} dimensions)")
    return line


def _print_best(run_dir) -> None:
    """The best checkpoint's validation report: per-class precision/recall/F1 and the confusion matrix."""
    from rnnkit.metrics import confusion_from_metrics, format_report
    from rnnkit.tasks import classify

    run = classify.load_run(run_dir)
    data = run.data
    corpus = classify.load_corpus(data, run.task)
    batches = classify.make_batches(corpus, data)[1]
    from rnnkit.train import evaluate

    metrics = evaluate(run.model, run.task, batches)
    print("validation, best checkpoint:")
    print(format_report(confusion_from_metrics(metrics, run.task.labels), run.task.labels))


# ---- predict / eval for classify runs ----------------------------------------------------------------------


def add_predict_args(p) -> None:
    """`rnnkit predict RUN_DIR --input FILE`: label and class probabilities for every input text."""
    p.add_argument("--input", required=True, help="one text per line, or a file in --input-format")
    p.add_argument("--input-format", choices=["text", "tsv", "csv", "sst"], default="text",
                   help="text: one text per line; tsv/csv (the run's columns) or sst: labelled, also reports accuracy")
    p.add_argument("--format", choices=["text", "json"], default="text", help="json: one JSON object per line")
    p.add_argument("--batch-size", type=positive_int, default=128)


def predict(args) -> int:
    from rnnkit.metrics import confusion_matrix, format_report
    from rnnkit.tasks import classify

    run = classify.load_run(args.run_dir)
    examples = classify.read_input(run, args.input, args.input_format)
    probs = classify.predict_proba(run, [e.tokens for e in examples], args.batch_size)
    labels = run.task.labels
    for e, p in zip(examples, probs.tolist()):
        best = labels[max(range(len(p)), key=p.__getitem__)]
        if args.format == "json":
            record = {"text": " ".join(e.tokens), "label": best, "probabilities": dict(zip(labels, p))}
            if e.label is not None:
                record["gold"] = e.label
            print(json.dumps(record, ensure_ascii=False))
        else:
            print(best + "\t" + " ".join(f"{label}={q:.4f}" for label, q in zip(labels, p)))
    if examples and examples[0].label is not None:
        gold = [run.task.label_id(e.label, e.where) for e in examples]
        print(format_report(confusion_matrix(gold, probs.argmax(1).numpy(), len(labels)), labels), file=sys.stderr)
    return 0


def add_eval_args(p) -> None:
    """`rnnkit eval RUN_DIR --data FILE`: loss, accuracy, macro-F1 and the confusion matrix on a labelled file."""
    p.add_argument("--data", required=True, help="labelled file in the run's training format")
    p.add_argument("--format", choices=["auto", "tsv", "csv", "sst"], default="auto")
    p.add_argument("--batch-size", type=positive_int, default=128)


def evaluate(args) -> int:
    from rnnkit.metrics import confusion_from_metrics, format_report
    from rnnkit.tasks import classify

    run = classify.load_run(args.run_dir)
    metrics = classify.evaluate_file(run, args.data, args.format, args.batch_size)
    print(f"loss {metrics['loss']:.4f} accuracy {metrics['accuracy']:.4f} macro_f1 {metrics['macro_f1']:.4f}")
    print(format_report(confusion_from_metrics(metrics, run.task.labels), run.task.labels))
    return 0
