"""`rnnkit train classify` and, for classify runs, `rnnkit predict` / `rnnkit eval`.

Parses arguments and calls the library (`rnnkit.tasks.classify`).
"""
from __future__ import annotations

import json
import sys

from rnnkit.cli.common import add_train_options, cell_names, positive_int, train_config


def register(train_sub, sub) -> None:
    p = train_sub.add_parser("classify", help="train a sequence classifier (TSV/CSV or SST trees)")
    g = p.add_argument_group("data")
    g.add_argument("--data", help="training file: .tsv/.csv (optionally .gz) or SST trees, one per line")
    g.add_argument("--valid", help="validation file (same format); default: a random --valid-fraction of --data")
    g.add_argument("--valid-fraction", type=float, default=0.1)
    g.add_argument("--format", choices=["auto", "tsv", "csv", "sst"], default="auto",
                   help="auto: from the file name (.tsv, .csv), else SST trees if lines start with '('")
    g.add_argument("--text-column", default="0", help="0-based index or header name (tsv/csv)")
    g.add_argument("--label-column", default="1", help="0-based index or header name (tsv/csv)")
    g.add_argument("--header", action="store_true", help="the first row is a header (implied by column names)")
    g.add_argument("--no-quoting", action="store_true", help="treat double quotes as ordinary characters")
    g.add_argument("--sst-labels", choices=["fine", "binary"], default="fine",
                   help="SST: 5 classes, or negative/positive with neutral sentences dropped")
    g.add_argument("--phrases", action="store_true", help="SST: also train on every labelled phrase (subtree)")
    g.add_argument("--lower", action="store_true", help="lower-case the tokens")
    g.add_argument("--min-freq", type=positive_int, default=1, help="rarer words become <unk>")
    g = p.add_argument_group("model")
    g.add_argument("--cell", choices=cell_names(), default="lstm")
    g.add_argument("--layers", type=positive_int, default=1)
    g.add_argument("--hidden", type=positive_int, default=128)
    g.add_argument("--emb", type=positive_int, default=None, help="embedding size (default: the vectors' or 128)")
    g.add_argument("--unidirectional", action="store_true", help="one direction (default: bidirectional)")
    g.add_argument("--pooling", choices=["last", "mean", "max", "attention"], default="last")
    g.add_argument("--attention-size", type=positive_int, default=64)
    g.add_argument("--dropout", type=float, default=0.0)
    g.add_argument("--vectors", help="pretrained word vectors, GloVe/word2vec text format (optionally .gz)")
    g.add_argument("--freeze-vectors", action="store_true", help="keep the embedding fixed during training")
    add_train_options(p, out="runs/classify", clip_help="max gradient norm (loss averaged over the batch)")
    p.add_argument("--eval-batch-size", type=positive_int, default=128)
    p.set_defaults(run=run_train_classify)


def run_train_classify(args) -> int:
    from rnnkit.cli.common import UsageError
    from rnnkit.tasks import classify

    if args.resume:
        _print_history(classify.resume(args.resume))
        return 0
    if not args.data:
        raise UsageError("rnnkit train classify: error: --data is required (a .tsv/.csv file or SST trees)")
    data = classify.ClassifyDataConfig(
        train=args.data, valid=args.valid, format=args.format, text_column=args.text_column,
        label_column=args.label_column, header=True if args.header else None, quoting=not args.no_quoting,
        sst_labels=args.sst_labels, phrases=args.phrases, lower=args.lower, min_freq=args.min_freq,
        valid_fraction=args.valid_fraction, batch_size=args.batch_size, eval_batch_size=args.eval_batch_size)
    corpus = classify.load_corpus(data)
    task = corpus.task
    vectors = None
    if args.vectors:
        from rnnkit.data.vectors import load_vectors

        vectors = load_vectors(args.vectors, task.vocab, lower=True)
        print(f"vectors: {args.vectors}: {vectors.num_found:,} of {len(task.vocab):,} words found "
              f"({vectors.dim} dimensions)", file=sys.stderr)
    elif args.freeze_vectors:
        raise UsageError("rnnkit train classify: error: --freeze-vectors needs --vectors")
    model_config = classify.ClassifierConfig(
        vocab_size=len(task.vocab), num_classes=len(task.labels), cell=args.cell, layers=args.layers,
        hidden=args.hidden, emb=args.emb or (vectors.dim if vectors else 128),
        bidirectional=not args.unidirectional, pooling=args.pooling, attention_size=args.attention_size,
        dropout=args.dropout, freeze_embedding=args.freeze_vectors)
    print(f"data: {args.data} ({len(corpus.train):,} examples), valid: {corpus.valid_source} "
          f"({len(corpus.valid):,}), vocabulary {len(task.vocab):,}, labels {', '.join(task.labels)}",
          file=sys.stderr)
    _print_history(classify.fit(args.out, data, model_config, train_config(args), corpus, vectors))
    _print_best(args.out, corpus, data)
    print(f"run saved in {args.out}", file=sys.stderr)
    return 0


def _print_history(history: list[dict]) -> None:
    for h in history:
        v = h.get("valid") or {}
        print(f"epoch {h['epoch']}: train loss {h['train']['loss']:.4f} accuracy {h['train']['accuracy']:.4f}; "
              f"valid loss {v.get('loss', float('nan')):.4f} accuracy {v.get('accuracy', float('nan')):.4f} "
              f"macro-F1 {v.get('macro_f1', float('nan')):.4f}")


def _print_best(run_dir, corpus, data) -> None:
    """The best checkpoint's validation report: per-class precision/recall/F1 and the confusion matrix."""
    from rnnkit.metrics import confusion_matrix, format_report
    from rnnkit.tasks import classify

    run = classify.load_run(run_dir)
    probs = classify.predict_proba(run, [run.task.vocab.decode(ids) for ids, _ in corpus.valid],
                                   data.eval_batch_size)
    cm = confusion_matrix([y for _, y in corpus.valid], probs.argmax(1).numpy(), len(run.task.labels))
    print("validation, best checkpoint:")
    print(format_report(cm, run.task.labels))


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
