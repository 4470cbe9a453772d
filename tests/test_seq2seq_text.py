"""Real text for seq2seq: tokenizers saved with the run (sentencepiece, moses), --data pairs.tsv with --columns and a
seeded hold-out, sacreBLEU/chrF of detokenised output against the raw references (oracle: sacrebleu itself on the
raw strings), old run directories without a tokenizer entry, and bad input -> one line, exit 2."""
import gzip
import json
import random

import pytest
import sacrebleu
import torch
from _cli_errors import one_error_line
from sacremoses import MosesDetokenizer, MosesTokenizer

from rnnkit.cli import main
from rnnkit.data.parallel import read_tsv_pairs
from rnnkit.data.tokenizers import Tokenizer, train_subword
from rnnkit.tasks import seq2seq
from rnnkit.tasks.decode import evaluate_files, translate
from rnnkit.train import TrainConfig

NOUNS = ["cat", "dog", "house", "tree", "river", "garden", "child", "teacher"]
COLOURS = {"red": "rouge", "blue": "bleu", "green": "vert", "black": "noir"}
FR = {"cat": "chat", "dog": "chien", "house": "maison", "tree": "arbre", "river": "rivière", "garden": "jardin",
      "child": "enfant", "teacher": "professeur"}
QUIET = dict(device="cpu", progress=False, tensorboard=False)


def pairs(n: int, seed: int) -> list[tuple[str, str]]:
    """English -> French-like captions with punctuation glued to words ("dog." / "chien."), cased."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        noun, colour = rng.choice(NOUNS), rng.choice(list(COLOURS))
        end = rng.choice([".", "!", "?"])
        out.append((f"The {colour} {noun}{end}", f"Le {FR[noun]} {COLOURS[colour]}{end}"))
    return out


def write_tsv(path, rows, crlf=False, bom=False):
    text = ("\r\n" if crlf else "\n").join(f"{a}\t{b}" for a, b in rows) + ("\r\n" if crlf else "\n")
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    return path


def test_tsv_pairs_columns_crlf_bom_and_gzip(tmp_path):
    rows = pairs(20, 0)
    plain = read_tsv_pairs(write_tsv(tmp_path / "a.tsv", rows))
    assert plain.src == [a for a, _ in rows] and plain.tgt == [b for _, b in rows]
    crlf = read_tsv_pairs(write_tsv(tmp_path / "b.tsv", rows, crlf=True, bom=True))
    assert crlf.src == plain.src and crlf.tgt == plain.tgt  # no "\r" at the ends, no BOM on the first word
    (tmp_path / "c.tsv.gz").write_bytes(gzip.compress((tmp_path / "a.tsv").read_bytes()))
    swapped = read_tsv_pairs(tmp_path / "c.tsv.gz", (1, 0))
    assert swapped.src == plain.tgt and swapped.tgt == plain.src
    three = tmp_path / "d.tsv"  # Tatoeba-style: an attribution column after the pair
    three.write_text("".join(f"{a}\t{b}\tCC-BY 2.0 (France) #{i}\n" for i, (a, b) in enumerate(rows)))
    assert read_tsv_pairs(three).tgt == plain.tgt


def test_seeded_hold_out_of_the_pairs(tmp_path):
    path = write_tsv(tmp_path / "p.tsv", pairs(200, 0))
    data = seq2seq.Seq2SeqData(data=str(path), tokenizer="whitespace", valid_fraction=0.1, split_seed=3)
    _, _, train, valid, _ = data.load()
    assert len(valid) == 20 and len(train) == 180
    again = seq2seq.Seq2SeqData(data=str(path), tokenizer="whitespace", valid_fraction=0.1, split_seed=3).load()
    assert again[3] == valid
    other = seq2seq.Seq2SeqData(data=str(path), tokenizer="whitespace", valid_fraction=0.1, split_seed=4).load()
    assert other[3] != valid
    raw = read_tsv_pairs(path)
    held = data.raw(str(path), None)
    from rnnkit.data.parallel import split_pairs

    tr, va = split_pairs(held, 0.1, 3)
    assert sorted(tr.lines + va.lines) == raw.lines and not set(tr.lines) & set(va.lines)


def test_moses_and_whitespace_tokenizers_match_their_definitions():
    line = 'Tom, the "cat" isn\'t here (yet)... 3.5 km!'
    moses = Tokenizer("moses", "en")
    assert moses.encode(line) == MosesTokenizer("en").tokenize(line, escape=False)
    assert moses.decode(moses.encode(line)) == MosesDetokenizer("en").detokenize(
        MosesTokenizer("en").tokenize(line, escape=False))
    assert Tokenizer("whitespace").encode(line) == line.split()
    assert Tokenizer("char").encode(" ab c ") == ["a", "b", " ", "c"]


def test_subword_model_exact_size_deterministic_and_round_trips():
    lines = [f"{a} {b}" for a, b in pairs(300, 1)]
    first = train_subword(lines, "sentencepiece-bpe", 80, "x")
    again = train_subword(lines, "sentencepiece-bpe", 80, "x")
    assert first.model == again.model and len(first.pieces()) == 79  # 80 pieces, one of them <unk>
    for line in lines[:20]:
        assert first.decode(first.encode(line)) == line
    assert len(first.encode("The red garden.")) < len("The red garden.")  # merges, not characters


@pytest.fixture(scope="module")
def subword_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("s2s_text")
    write_tsv(tmp / "train.tsv", pairs(600, 0))
    valid = pairs(40, 1)
    (tmp / "valid.en").write_text("".join(a + "\n" for a, _ in valid))
    (tmp / "valid.fr").write_text("".join(b + "\n" for _, b in valid))
    run = tmp / "run"
    data = seq2seq.Seq2SeqData(data=str(tmp / "train.tsv"), vocab_size=60, batch_size=16)
    seq2seq.fit(run, data, TrainConfig(epochs=6, optimizer="adam", lr=1e-2, **QUIET), emb=16, hidden=32)
    return tmp, run, valid


def test_subword_run_saves_and_reloads_its_tokenizer(subword_run):
    tmp, run, valid = subword_run
    config = json.loads((run / "config.json").read_text())
    assert config["task"]["tokenizer"]["tgt"] == {"kind": "sentencepiece-bpe", "file": "tokenizer.model",
                                                  "pieces": 59}
    assert config["task"]["joint"] is True and (run / "tokenizer.model").is_file()
    loaded = seq2seq.load_run(run)
    assert loaded.task.src_tokenizer is loaded.task.tgt_tokenizer
    assert loaded.task.src_vocab.itos == loaded.task.tgt_vocab.itos  # one joint vocabulary
    out = translate(loaded, [a for a, _ in valid], beam=3)
    assert all("\u2581" not in t.text for t in out)  # detokenised
    exact = sum(t.text == b for t, (_, b) in zip(out, valid)) / len(valid)
    assert exact >= 0.9, [(t.text, b) for t, (_, b) in zip(out, valid)][:5]


def test_eval_bleu_is_sacrebleu_on_detokenised_output_vs_raw_references(subword_run, capsys):
    tmp, run, valid = subword_run
    metrics = evaluate_files(run, tmp / "valid.en", tmp / "valid.fr", beam=2)
    hyps = [t.text for t in translate(seq2seq.load_run(run), [a for a, _ in valid], beam=2)]
    raw_refs = (tmp / "valid.fr").read_text(encoding="utf-8").splitlines()
    assert metrics["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [raw_refs]).score, abs=1e-9)
    assert metrics["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [raw_refs]).score, abs=1e-9)
    assert metrics["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp")
    assert main(["eval", str(run), "--src", str(tmp / "valid.en"), "--tgt", str(tmp / "valid.fr"), "--beam", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"bleu {metrics['bleu']:.4f}" in lines[0] and lines[1].startswith("sacrebleu: nrefs:1|")


def test_old_run_without_a_tokenizer_entry_loads_as_whitespace(tmp_path):
    rows = pairs(100, 2)
    (tmp_path / "s.txt").write_text("".join(a + "\n" for a, _ in rows))
    (tmp_path / "t.txt").write_text("".join(b + "\n" for _, b in rows))
    data = seq2seq.Seq2SeqData(src=str(tmp_path / "s.txt"), tgt=str(tmp_path / "t.txt"), level="word")
    seq2seq.fit(tmp_path / "r", data, TrainConfig(epochs=1, **QUIET), emb=8, hidden=8)
    before = [t.text for t in translate(seq2seq.load_run(tmp_path / "r"), ["The red cat."])]
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    for key in ("tokenizer", "joint"):
        del config["task"][key]  # what rnnkit wrote before tokenizers existed
    for key in ("data", "columns", "valid_data", "tokenizer", "vocab_size", "joint_vocab", "src_lang", "tgt_lang",
                "valid_fraction", "split_seed"):
        config["data"].pop(key, None)
    (tmp_path / "r" / "config.json").write_text(json.dumps(config))
    old = seq2seq.load_run(tmp_path / "r")
    assert old.task.src_tokenizer.kind == "whitespace" and old.task.tokenize("The red cat.") == ["The", "red", "cat."]
    assert [t.text for t in translate(old, ["The red cat."])] == before


def test_separate_vocabularies_and_moses(tmp_path):
    path = write_tsv(tmp_path / "p.tsv", pairs(200, 3))
    data = seq2seq.Seq2SeqData(data=str(path), tokenizer="sentencepiece-unigram", vocab_size=30, joint_vocab=False)
    src_vocab, tgt_vocab, _, _, (src_tok, tgt_tok) = data.load()
    assert src_tok is not tgt_tok and src_tok.file == "src_tokenizer.model" and src_vocab != tgt_vocab
    assert len(src_vocab) == len(tgt_vocab) == 30 + 3  # the 4 specials, the model's <unk> among them
    moses = seq2seq.Seq2SeqData(data=str(path), tokenizer="moses", tgt_lang="fr", valid_fraction=0.0)
    src_vocab, tgt_vocab, train, _, _ = moses.load()
    assert "." in tgt_vocab and "chien." not in tgt_vocab  # punctuation split from the words
    fit = seq2seq.fit(tmp_path / "m", moses, TrainConfig(epochs=1, **QUIET), emb=8, hidden=8)
    assert fit and seq2seq.load_run(tmp_path / "m").task.tgt_tokenizer.lang == "fr"


def test_same_seed_same_subword_run(tmp_path):
    path = write_tsv(tmp_path / "p.tsv", pairs(80, 4))
    data = seq2seq.Seq2SeqData(data=str(path), vocab_size=50, batch_size=16)
    for name in ("a", "b"):
        seq2seq.fit(tmp_path / name, data, TrainConfig(epochs=1, seed=2, **QUIET), emb=8, hidden=8)
    assert (tmp_path / "a" / "tokenizer.model").read_bytes() == (tmp_path / "b" / "tokenizer.model").read_bytes()
    a, b = (seq2seq.load_run(tmp_path / n).model.state_dict() for n in ("a", "b"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bad_input_one_line_exit_2(tmp_path, capsys):
    good = write_tsv(tmp_path / "good.tsv", pairs(30, 0))
    one_column = tmp_path / "one.tsv"
    one_column.write_text("a b\tc d\ne f\tg\nonly one column\n")
    empty_side = tmp_path / "empty.tsv"
    empty_side.write_text("a b\tc d\n\tg h\n")
    mixed = tmp_path / "mixed.tsv"
    mixed.write_bytes("naïve\tnaïf\n".encode() + "café\tcafé\n".encode("latin-1"))
    base = ["train", "seq2seq", "--out", str(tmp_path / "r"), "--epochs", "1", "--hidden", "8", "--emb", "8"]
    one_error_line(capsys, [*base, "--data", str(one_column)],
                   "one.tsv:3: expected at least 2 tab-separated columns (a sentence pair), found 1")
    one_error_line(capsys, [*base, "--data", str(empty_side)], "empty.tsv:2: column 0: expected a sentence, "
                   "found an empty field")
    one_error_line(capsys, [*base, "--data", str(good), "--columns", "1,2"],
                   "good.tsv:1: expected at least 3 tab-separated columns")
    one_error_line(capsys, [*base, "--data", str(mixed)], "mixed.tsv:2: expected", "not UTF-8")
    one_error_line(capsys, [*base, "--data", str(good), "--vocab-size", "5000"],
                   "good.tsv: --vocab-size: expected at most", "found 5000")
    one_error_line(capsys, [*base, "--data", str(good), "--columns", "0"], "--columns: expected two")
    one_error_line(capsys, [*base, "--data", str(good), "--src", str(good), "--tgt", str(good)], "not both")
    one_error_line(capsys, [*base, "--data", str(good), "--level", "char", "--tokenizer", "moses"],
                   "--level char means --tokenizer char")
    one_error_line(capsys, [*base, "--data", str(good), "--tokenizer", "moses", "--vocab-size", "100"],
                   "--vocab-size applies to the subword tokenizers")
    assert not (tmp_path / "r").exists() and not list(tmp_path.glob(".r*"))


def test_export_carries_the_tokenizer(subword_run, tmp_path):
    """model.json names the tokenizer and the export holds its model: encoding a sentence with the exported
    sentencepiece model and the exported vocabulary gives the ids the run's own translate uses."""
    import sentencepiece as spm

    from rnnkit.export import export

    _, run, valid = subword_run
    out = export(run, tmp_path / "onnx")
    meta = json.loads((out / "model.json").read_text())
    assert meta["tokenizer"]["joint"] is True and meta["tokenizer"]["src"]["kind"] == "sentencepiece-bpe"
    assert (out / "tokenizer.model").read_bytes() == (run / "tokenizer.model").read_bytes()
    sp = spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model"))
    stoi = {t: i for i, t in enumerate(meta["src_vocab"]["tokens"])}
    loaded = seq2seq.load_run(run)
    for sentence, _ in valid[:5]:
        exported = [stoi.get(p, 1) for p in sp.encode(sentence, out_type=str)]
        assert exported == loaded.task.src_vocab.encode(loaded.task.tokenize(sentence))


def test_bleu_on_tokens_is_sacrebleu_without_the_detokenize_warning(caplog):
    """The second line of `rnnkit eval` scores token lists (ending in "." as tokens): sacrebleu's "forgot to
    detokenize" warning (>= 100 lines ending in " .") is about that line's input, not the detokenised BLEU."""
    from rnnkit.metrics import tokenized_bleu

    hyps = [["▁a", "▁dog", "▁runs", "."] if i % 3 else ["▁a", "▁cat", "."] for i in range(120)]
    refs = [["▁a", "▁dog", "▁runs", "."] for _ in range(120)]
    with caplog.at_level("WARNING", logger="sacrebleu"):
        got = tokenized_bleu(hyps, refs)
    assert not [r for r in caplog.records if "detokenize" in r.getMessage()], caplog.text
    ref = sacrebleu.corpus_bleu([" ".join(h) for h in hyps], [[" ".join(r) for r in refs]], tokenize="none",
                                force=True).score
    assert got == pytest.approx(ref, abs=1e-9) and 0 < got < 100
