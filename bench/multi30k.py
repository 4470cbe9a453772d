"""Multi30k de→en: encoder–decoder with each attention kind vs. the same model without attention, one run.

    python bench/multi30k.py --data /work/shared/data/multi30k --threads 1 \
        --attention additive none dot bilinear cosine additive-product hard --out /tmp/seq2seq/bench

Model (every row the same except the attention): bidirectional GRU encoder + GRU decoder (Luong-style
attention after the decoder step), emb = hidden = --hidden (256), one layer, Adam lr 1e-3 (halved every epoch
from --decay-start on, when given), clip 5, batch 64, dropout --dropout (0.3), --epochs (10) epochs (at most
--max-minutes of training each); the weights of the epoch with the lowest val loss are decoded. Text: the raw,
cased files, tokenised by --tokenizer (default: one sentencepiece BPE model of --vocab-size 8000 pieces for
both languages, trained on the training pairs), sentences cut at 100 pieces. Training data: the 29,000 train
pairs; metrics on the 1,014 val pairs: per-token perplexity of the references (best epoch), and sacreBLEU /
chrF of the detokenised output of greedy decoding and of beam search (--beam 5, --length-penalty 0.6; beam 1:
greedy only) against the raw val.en (cased, 13a: comparable with published detokenised sacreBLEU; the
signature is printed), plus BLEU on the run's own pieces.

Each model's row is printed (and appended to OUT/results.jsonl) as soon as it is done, so a stopped run still
leaves the rows it finished. Wall time per epoch = training + validation, read from the run's metrics.jsonl.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch


def prepare(data: Path) -> dict[str, Path]:
    return {f"{split}.{lang}": data / f"{split}.{lang}.gz" for split in ("train", "val") for lang in ("de", "en")}


def epoch_times(run_dir: Path) -> list[float]:
    """Seconds of each epoch (training + validation) from the run's metrics.jsonl."""
    ends = [r["time"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
            if r.get("split") == "valid"]
    return [b - a for a, b in zip([0.0, *ends], ends)]


def run_one(attention: str, files: dict, args) -> dict:
    from rnnkit.tasks import seq2seq
    from rnnkit.tasks.decode import evaluate_files
    from rnnkit.train import TrainConfig

    run_dir = args.out / f"{attention}"
    data = seq2seq.Seq2SeqData(src=str(files["train.de"]), tgt=str(files["train.en"]),
                               valid_src=str(files["val.de"]), valid_tgt=str(files["val.en"]),
                               tokenizer=args.tokenizer, vocab_size=args.vocab_size, max_len=100, min_freq=1,
                               batch_size=64, eval_batch_size=128)
    train = TrainConfig(epochs=args.epochs, optimizer="adam", lr=1e-3, clip=5.0, seed=args.seed, device="cpu",
                        progress=False, tensorboard=False, max_minutes=args.max_minutes,
                        lr_schedule="step" if args.decay_start else "none", lr_decay_start=args.decay_start or 4)
    start = time.perf_counter()
    history = seq2seq.fit(run_dir, data, train, cell="gru", emb=args.hidden, hidden=args.hidden, layers=1,
                          bidirectional=True, attention=attention, dropout=args.dropout, overwrite=True)
    train_s = time.perf_counter() - start
    best = min(history, key=lambda h: h["valid"]["loss"])
    row = {"attention": attention, "epochs": len(history), "best_epoch": best["epoch"],
           "val_ppl": best["valid"]["ppl"], "s_per_epoch": sum(epoch_times(run_dir)) / len(history),
           "train_minutes": train_s / 60}
    greedy = evaluate_files(run_dir, files["val.de"], files["val.en"], beam=1, batch_size=128)
    row.update(bleu_greedy=greedy["bleu"], chrf_greedy=greedy["chrf"], bleu_tok_greedy=greedy["bleu_tok"],
               signature=greedy["bleu_signature"], chrf_signature=greedy["chrf_signature"])
    if args.beam > 1:
        beam = evaluate_files(run_dir, files["val.de"], files["val.en"], beam=args.beam,
                              length_penalty=args.length_penalty, batch_size=128)
        row.update(bleu_beam=beam["bleu"], chrf_beam=beam["chrf"], bleu_tok_beam=beam["bleu_tok"])
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="folder with {train,val}.{de,en}.gz")
    p.add_argument("--out", type=Path, default=Path("/tmp/seq2seq/bench"))
    p.add_argument("--attention", nargs="+", default=["additive", "none", "dot", "bilinear", "cosine",
                                                       "additive-product", "hard"])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--decay-start", type=int, default=0,
                   help="halve Adam's lr (1e-3) every epoch from this one on (1-based; 0: constant lr)")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--length-penalty", type=float, default=0.6,
                   help="beam search ranks by score / length**alpha (0.6: the best of 0, 0.6 and 1 on val)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tokenizer", default="sentencepiece-bpe")
    p.add_argument("--vocab-size", type=int, default=8000)
    p.add_argument("--max-minutes", type=float, default=None, help="training time budget per model")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    files = prepare(args.data)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} thread(s); epochs {args.epochs}, hidden {args.hidden}, dropout {args.dropout}, "
          f"tokenizer {args.tokenizer} {args.vocab_size}, lr halved from epoch {args.decay_start or '-'}", flush=True)
    print("| attention | epochs | best epoch | val ppl | val BLEU greedy | val chrF greedy | val BLEU beam "
          f"{args.beam} | s / epoch |", flush=True)
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |", flush=True)
    for attention in args.attention:
        row = run_one(attention, files, args)
        with open(args.out / "results.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        beam = f"{row['bleu_beam']:.2f}" if "bleu_beam" in row else "-"
        print(f"| {attention} | {row['epochs']} | {row['best_epoch']} | {row['val_ppl']:.2f} | "
              f"{row['bleu_greedy']:.2f} | {row['chrf_greedy']:.2f} | {beam} | {row['s_per_epoch']:.0f} |",
              flush=True)
        print(f"  sacrebleu {row['signature']}; BLEU on pieces: greedy {row['bleu_tok_greedy']:.2f}"
              + (f", beam {row['bleu_tok_beam']:.2f}" if "bleu_tok_beam" in row else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
