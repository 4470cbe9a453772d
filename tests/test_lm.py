"""Language models: loss convention, learning, state carrying, and generation equivalences."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnkit.data import LMStream
from rnnkit.generate import SamplingOptions, filter_top_k, filter_top_p, generate, generate_steps, next_tokens
from rnnkit.tasks.lm import RNNLM, LMTask, RNNLMConfig, build_model, config_from_dict, config_to_dict, lm_loss
from rnnkit.tasks.nplm import NPLM, NPLMConfig
from rnnkit.train import TrainConfig, Trainer


def tiny_rnn(vocab=7, cell="lstm", **kw):
    torch.manual_seed(0)
    return RNNLM(RNNLMConfig(vocab_size=vocab, cell=cell, layers=2, hidden=12, emb=12, **kw)).eval()


def tiny_nplm(vocab=7, **kw):
    torch.manual_seed(0)
    return NPLM(NPLMConfig(vocab_size=vocab, context=3, emb=5, hidden=9, **kw)).eval()


def test_loss_is_sum_over_time_mean_over_batch():
    torch.manual_seed(1)
    logits, targets = torch.randn(3, 5, 4), torch.randint(0, 4, (3, 5))
    loss, stats = lm_loss(logits, targets)
    logp = torch.log_softmax(logits, -1).gather(-1, targets[..., None]).squeeze(-1)  # (B, T)
    assert torch.allclose(loss, -logp.sum() / 3)
    assert torch.allclose(stats["nll"], -logp.sum()) and stats["tokens"] == 15
    metrics = LMTask(None, "char").summarize({"nll": 30.0, "tokens": 10})
    assert metrics["loss"] == pytest.approx(3.0) and metrics["bpc"] == pytest.approx(3.0 / math.log(2))
    assert LMTask(None, "word").summarize({"nll": 30.0, "tokens": 10})["ppl"] == pytest.approx(math.exp(3.0))


@pytest.mark.parametrize("make", [lambda: tiny_rnn(cell="lstm"), lambda: tiny_rnn(cell="gru"),
                                  lambda: tiny_rnn(cell="rnn-tanh"), tiny_nplm])
def test_windows_with_carried_state_equal_one_long_forward(make):
    model = make()
    ids = torch.randint(0, 7, (3, 23))
    full, _ = model.step(ids)
    state, parts = None, []
    for s in range(0, 23, 5):
        logits, state = model.step(ids[:, s: s + 5], state)
        parts.append(logits)
    torch.testing.assert_close(torch.cat(parts, 1), full, rtol=1e-5, atol=1e-5)


def test_tied_weights_share_the_embedding_and_need_equal_sizes():
    model = tiny_rnn(tied=True)
    assert model.decoder.weight is model.embedding.weight
    with pytest.raises(ValueError, match="emb=8, hidden=12"):
        RNNLMConfig(vocab_size=7, hidden=12, emb=8, tied=True)


def test_uniform_init_range():
    model = tiny_rnn(init_range=0.05)
    assert all(p.abs().max() <= 0.05 for p in model.parameters())


def test_nplm_matches_bengio_equation():
    model = tiny_nplm(direct=True)
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    logits, state = model.step(ids)
    pad = model.boundary
    ctx = [pad, pad, 1]  # the 3 tokens before position t=1 (ids[0,1] = 2 is predicted from them)
    x = model.embedding(torch.tensor(ctx)).reshape(-1)  # [C(w_{t-3}); C(w_{t-2}); C(w_{t-1})]
    y = model.output.bias + model.direct.weight @ x + model.output.weight @ torch.tanh(
        model.hidden.bias + model.hidden.weight @ x)
    torch.testing.assert_close(logits[0, 1], y)
    assert state.tolist() == [[3, 4, 5]]


def test_config_json_round_trip():
    for config in (RNNLMConfig(vocab_size=9, cell="gru", tied=True), NPLMConfig(vocab_size=9, direct=False)):
        again = config_from_dict(config_to_dict(config))
        assert again == config and type(build_model(again)) is type(build_model(config))


# ---- learning, through the shared Trainer -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rnn", "nplm"])
def test_learns_a_repeating_pattern(kind):
    pattern = [0, 1, 2, 3, 2, 1, 4, 0, 3]  # every token determined by the previous 3
    ids = torch.tensor(pattern * 60)
    model = tiny_rnn(vocab=5).train() if kind == "rnn" else tiny_nplm(vocab=5).train()
    task = LMTask(None, "char")
    config = TrainConfig(epochs=12, optimizer="adam", lr=0.02, progress=False, tensorboard=False, device="cpu")
    trainer = Trainer(model, task, LMStream(ids, 4, 10), None, config, run_dir=None)
    history = trainer.fit()
    first, last = history[0]["train"]["loss"], trainer.evaluate(LMStream(ids, 4, 10))["loss"]
    assert first > 0.5 and last < 0.05  # chance is ln 5 = 1.6 nats


# ---- generation -----------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [tiny_rnn, tiny_nplm])
def test_sampling_with_carried_state_equals_rerunning_the_prefix(make):
    model = make()
    prime = [1, 2, 3]
    steps = list(generate_steps(model, prime, 12, num_samples=3, options=SamplingOptions(0.9), seed=5))
    tokens = torch.stack([s.token for s in steps], 1)  # (3, 12)
    seq = torch.cat([torch.tensor([prime] * 3), tokens], 1)
    full, _ = model.step(seq[:, :-1])  # the whole prefix, re-run at once
    for t, s in enumerate(steps):
        torch.testing.assert_close(s.logits, full[:, len(prime) - 1 + t], rtol=1e-5, atol=1e-5)


def test_greedy_is_deterministic_argmax():
    model = tiny_rnn()
    steps = list(generate_steps(model, [4, 1], 10, num_samples=2, options=SamplingOptions(greedy=True)))
    for s in steps:
        assert torch.equal(s.token, s.logits.argmax(-1))
    a = generate(model, [4, 1], 10, options=SamplingOptions(greedy=True), seed=1)
    b = generate(model, [4, 1], 10, options=SamplingOptions(greedy=True), seed=2)
    assert torch.equal(a, b) and torch.equal(a[0], torch.stack([s.token[0] for s in steps]))


def test_seed_reproduces_and_samples_differ():
    model = tiny_rnn()
    a = generate(model, [1], 30, num_samples=4, seed=3)
    assert torch.equal(a, generate(model, [1], 30, num_samples=4, seed=3))
    assert len({tuple(r.tolist()) for r in a}) > 1  # 4 parallel samples are independent draws


def test_top_k_mask_matches_direct_computation():
    torch.manual_seed(0)
    logits = torch.randn(6, 20)
    for k in (1, 3, 19):
        kept = torch.isfinite(filter_top_k(logits, k)).numpy()
        order = np.argsort(-logits.numpy(), axis=1)
        expected = np.zeros_like(kept)
        for row in range(6):
            expected[row, order[row, :k]] = True
        assert (kept == expected).all()


def test_top_p_mask_matches_direct_computation():
    torch.manual_seed(0)
    logits = torch.randn(6, 20) * 2
    probs = torch.softmax(logits, -1).numpy().astype(np.float64)
    for p in (0.1, 0.5, 0.9):
        kept = torch.isfinite(filter_top_p(logits, p)).numpy()
        for row in range(6):
            order = np.argsort(-probs[row])
            mass, keep = 0.0, set()
            for j in order:  # smallest prefix of most probable tokens with mass >= p
                keep.add(j)
                mass += probs[row, j]
                if mass >= p:
                    break
            assert set(np.flatnonzero(kept[row])) == keep


def test_temperature_and_filters_give_the_right_distribution():
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0]]).repeat(20000, 1)
    options = SamplingOptions(temperature=0.5, top_k=3)
    gen = torch.Generator().manual_seed(0)
    draws = next_tokens(logits, options, gen)
    freq = torch.bincount(draws, minlength=4).float() / len(draws)
    expected = F.softmax(torch.tensor([2.0, 1.0, 0.5]) / 0.5, -1)
    assert freq[3] == 0
    torch.testing.assert_close(freq[:3], expected, atol=0.015, rtol=0)

