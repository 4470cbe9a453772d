"""Decoding: beam 1 == greedy; beam search == exhaustive search on a tiny model; step-by-step decoding ==
the teacher-forced training forward; no padding leaks; <unk> replacement."""
import itertools

import numpy as np
import pytest
import torch

from rnnkit.data import Vocab
from rnnkit.tasks.decode import (
    EOS_ID,
    UNK_ID,
    Hypothesis,
    _to_translation,
    beam_search,
    greedy,
    log_probs,
    sequence_log_prob,
)
from rnnkit.tasks.seq2seq import SPECIALS, Seq2Seq, Seq2SeqConfig, Seq2SeqTask, collate

EXAMPLES = [([4, 5, 6, 7], [6, 5]), ([7, 8], [8, 7, 4, 5, 6]), ([5], [5]), ([8, 8, 4], [4, 6, 6])]


def model(seed=0, scale=1.0, **options):
    torch.manual_seed(seed)
    config = dict(tgt_vocab_size=9, src_vocab_size=9, emb=8, hidden=6, attention="additive")
    config.update(options)
    m = Seq2Seq(Seq2SeqConfig(**config)).eval()
    if scale != 1.0:  # larger weights: peaky, varied next-token distributions, a harder search problem
        with torch.no_grad():
            for p in m.parameters():
                p.mul_(scale)
    return m


CONFIGS = [
    dict(attention="additive"),
    dict(attention="none", cell="lstm", layers=2),
    dict(attention="dot", cell="lstm", input_feeding=True),
    dict(attention="hard", bidirectional=False),
    dict(attention="bilinear", cell="rnn-tanh", layers=2, input_feeding=True),
    dict(attention="cosine", cell="gru-before"),
    dict(attention="additive-product", cell="ln-lstm"),
]


@pytest.mark.parametrize("options", CONFIGS)
def test_beam_one_is_greedy(options):
    m = model(scale=3.0, **options)
    b = collate(EXAMPLES)
    g = greedy(m, b.src, b.src_lengths, max_len_a=1.0, max_len_b=4)
    k1 = beam_search(m, b.src, b.src_lengths, beam=1, max_len_a=1.0, max_len_b=4)
    assert [h.tokens for h in g] == [h.tokens for h in k1]
    assert [h.score for h in g] == pytest.approx([h.score for h in k1], abs=1e-5)
    for i, h in enumerate(g):  # each greedy token is the argmax given the previous ones; the score is its log-prob
        src, n = b.src[i: i + 1, : b.src_lengths[i]], b.src_lengths[i: i + 1]
        assert h.score == pytest.approx(sequence_log_prob(m, src, n, h.tokens), abs=1e-4)


def all_outputs(limit: int, vocab: int):
    """Every output a search can produce with at most `limit` tokens, <eos> included: y (no specials but
    <unk>) of length 0 .. limit-1, then <eos>."""
    words = [UNK_ID, *range(len(SPECIALS), vocab)]
    for n in range(limit):
        yield from (list(y) for y in itertools.product(words, repeat=n))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_beam_search_finds_the_best_sequence(seed, alpha):
    """With a beam wide enough to keep every partial hypothesis, beam search is exhaustive: its answer must be
    the argmax of score / length^alpha over all outputs, enumerated by brute force with teacher forcing."""
    V, limit = 6, 4  # words: <unk>, 4, 5 -> 3 + 9 + 27 unfinished prefixes at most
    m = model(seed, scale=2.0, tgt_vocab_size=V, input_feeding=True, attention="bilinear")
    b = collate(EXAMPLES[:3])
    hyps = beam_search(m, b.src, b.src_lengths, beam=27, length_penalty=alpha, max_len_a=0.0, max_len_b=limit)
    for i, h in enumerate(hyps):
        src, n = b.src[i: i + 1, : b.src_lengths[i]], b.src_lengths[i: i + 1]
        scored = [(sequence_log_prob(m, src, n, y) / (len(y) + 1) ** alpha, y) for y in all_outputs(limit, V)]
        best_value, best = max(scored, key=lambda s: s[0])
        assert h.tokens == best, (h.tokens, best)
        assert h.score == pytest.approx(sequence_log_prob(m, src, n, best), abs=1e-4)
        runner_up = sorted(v for v, _ in scored)[-2]
        assert best_value - runner_up > 1e-6  # a unique optimum: the test is decisive


def test_narrow_beam_scores_are_consistent():
    m = model(3, scale=3.0, attention="dot", cell="lstm")
    b = collate(EXAMPLES)
    for h, i in zip(beam_search(m, b.src, b.src_lengths, beam=3), range(len(EXAMPLES))):
        src, n = b.src[i: i + 1, : b.src_lengths[i]], b.src_lengths[i: i + 1]
        assert h.score == pytest.approx(sequence_log_prob(m, src, n, h.tokens), abs=1e-4)
        assert h.attention.shape == (len(h.tokens) + 1, int(n))
        assert np.allclose(h.attention.sum(1), 1.0, atol=1e-5)


@pytest.mark.parametrize("options", CONFIGS)
def test_step_by_step_equals_training_forward(options):
    """forward(batch) (one fused decoder call when possible) == decode_step fed the reference token each step."""
    m = model(1, **options)
    b = collate(EXAMPLES)
    out = m(b)
    memory, state = m.encode(b.src, b.src_lengths)
    logits, weights = [], []
    for t in range(b.tgt_in.shape[1]):
        step, state, w = m.decode_step(b.tgt_in[:, t], state, memory)
        logits.append(step)
        weights.append(w)
    assert torch.allclose(out.logits, torch.stack(logits, 1), atol=1e-5)
    if options["attention"] != "none":
        assert torch.allclose(out.attention, torch.stack(weights, 1), atol=1e-6)


@pytest.mark.parametrize("options", CONFIGS)
def test_no_padding_leak(options):
    """Each sentence decoded in a padded batch == the same sentence alone; attention is 0 on padding."""
    m = model(2, **options)
    b = collate(EXAMPLES)
    out = m(b)
    for i, ex in enumerate(EXAMPLES):
        alone = m(collate([ex]))
        T = len(ex[1]) + 1
        assert torch.allclose(out.logits[i, :T], alone.logits[0], atol=1e-5)
        if out.attention is not None:
            assert (out.attention[i, :, len(ex[0]):] == 0).all()


def test_teacher_forcing_zero_feeds_own_predictions():
    """With teacher_forcing = 0 the training forward sees its own argmax: its predictions are greedy's."""
    m = model(4, scale=3.0, teacher_forcing=0.0, attention="additive")
    b = collate(EXAMPLES)
    m.train()  # teacher forcing applies in training mode only (no dropout in this model)
    pred = log_probs(m(b).logits).argmax(-1)  # the searches' distribution: no <pad>, no <bos>
    g = greedy(m, b.src, b.src_lengths, max_len_a=0.0, max_len_b=b.tgt_in.shape[1])
    for i, h in enumerate(g):
        assert pred[i, : len(h.tokens)].tolist() == h.tokens


def test_replace_unk_uses_most_attended_source_token():
    vocab = Vocab([*SPECIALS, "a", "b"])
    task = Seq2SeqTask(vocab, vocab)
    att = np.array([[0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.7, 0.2, 0.1], [1, 0, 0]])
    h = Hypothesis([UNK_ID, 4, UNK_ID], -1.0, att)
    assert _to_translation(task, ["x", "y", "z"], h, replace_unk=True).text == "y a x"
    assert _to_translation(task, ["x", "y", "z"], h, replace_unk=False).text == "<unk> a <unk>"
    assert EOS_ID == 3
