"""`rnnkit prepare lm`: tokenise a corpus once into a memory-mapped array (rnnkit.data.prepared), for
`rnnkit train lm --prepared DIR` on corpora larger than memory."""
from __future__ import annotations

import time

from rnnkit.cli.common import positive_int


def register(train_sub, sub) -> None:
    from rnnkit.data.tokenizers import KINDS

    p = sub.add_parser("prepare", help="tokenise a corpus once, for training on corpora larger than memory")
    kinds = p.add_subparsers(dest="what", required=True, parser_class=type(p))
    lm = kinds.add_parser("lm", help="a language-model corpus -> vocabulary + memory-mapped token ids",
                          description="One streaming pass over FILE...: the vocabulary (or a sentencepiece model), "
                          "the token ids as a memory-mapped uint16/uint32 array, and meta.json, written to a "
                          "temporary directory and renamed to --out. Train on it with `rnnkit train lm "
                          "--prepared DIR`.")
    lm.add_argument("--data", nargs="+", required=True, metavar="FILE", help="UTF-8 text files (or .gz), in order")
    lm.add_argument("--out", required=True, help="the directory to write (must not exist, unless --overwrite)")
    lm.add_argument("--valid", help="validation text; none: the last --valid-fraction of the tokens")
    lm.add_argument("--valid-fraction", type=float, default=0.1)
    lm.add_argument("--tokenizer", choices=KINDS, default="whitespace",
                    help="whitespace words (default), characters, moses, or a sentencepiece model")
    lm.add_argument("--vocab-size", type=positive_int, default=None,
                    help="subword pieces (none: at most 8000, fewer if the data has fewer)")
    lm.add_argument("--min-freq", type=positive_int, default=1, help="rarer tokens become <unk>")
    lm.add_argument("--lang", default="en", help="language code (moses)")
    lm.add_argument("--overwrite", action="store_true", help="replace an earlier prepared corpus in --out")
    lm.set_defaults(run=run_prepare_lm)


def run_prepare_lm(args) -> int:
    from rnnkit.data.prepared import prepare_lm

    start = time.perf_counter()
    corpus = prepare_lm(args.data, args.out, args.tokenizer, args.vocab_size, args.min_freq, args.valid,
                        args.valid_fraction, args.lang, args.overwrite)
    m = corpus.meta
    seconds = time.perf_counter() - start
    print(f"{args.out}: {m['train']['tokens']:,} training and {m['valid']['tokens']:,} validation tokens "
          f"({m['valid_source']}), vocabulary {m['vocab_size']:,}, {m['dtype'][1:]}; "
          f"{m['text_bytes'] / 1e6:.1f} MB read in {seconds:.1f} s ({m['text_bytes'] / 1e6 / seconds:.1f} MB/s)")
    return 0
