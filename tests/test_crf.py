"""The linear-chain CRF against brute force: log Z, NLL and Viterbi by enumerating all K^n tag paths."""
import itertools

import pytest
import torch

from rnnkit.nn.crf import CRF


def path_score(crf, emissions, path):
    """s(x, y) written out term by term for one sequence (emissions (n, K))."""
    s = emissions[0, path[0]] + (crf.start[path[0]] if crf.start is not None else 0.0)
    for t in range(1, len(path)):
        s = s + crf.transitions[path[t - 1], path[t]] + emissions[t, path[t]]
    return s + (crf.end[path[-1]] if crf.end is not None else 0.0)


def brute_force(crf, emissions):
    """log Z, the best path and its score, by enumerating every tag path of one sequence."""
    n, K = emissions.shape
    paths = list(itertools.product(range(K), repeat=n))
    scores = torch.stack([path_score(crf, emissions, p) for p in paths])
    best = int(scores.argmax())
    return torch.logsumexp(scores, 0), list(paths[best]), scores[best]


def random_crf(K, start_end=True):
    crf = CRF(K, start_end=start_end).double()
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    return crf


@pytest.mark.parametrize("start_end", [True, False])
def test_log_partition_nll_and_viterbi_equal_brute_force(float64_seeded, start_end):
    K, lengths = 3, [4, 1, 3, 2]
    crf = random_crf(K, start_end)
    B, T = len(lengths), max(lengths)
    emissions = torch.randn(B, T, K)
    tags = torch.randint(K, (B, T))
    mask = torch.arange(T).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    log_z = crf.log_partition(emissions, mask)
    nll = crf.nll(emissions, tags, mask)
    best, best_scores = crf.decode(emissions, mask)
    for b, n in enumerate(lengths):
        z, path, score = brute_force(crf, emissions[b, :n])
        torch.testing.assert_close(log_z[b], z)
        torch.testing.assert_close(nll[b], z - path_score(crf, emissions[b, :n], tags[b, :n].tolist()))
        assert best[b, :n].tolist() == path
        torch.testing.assert_close(best_scores[b], score)
        assert (best[b, n:] == path[-1]).all()  # padding repeats the last tag


def test_probabilities_sum_to_one(float64_seeded):
    crf = random_crf(3)
    emissions = torch.randn(1, 4, 3)
    nll = torch.stack([crf.nll(emissions, torch.tensor([p])) for p in itertools.product(range(3), repeat=4)])
    torch.testing.assert_close(torch.exp(-nll).sum(), torch.tensor(1.0))


def test_padded_batch_equals_each_sequence_alone(float64_seeded):
    K, lengths = 4, [5, 2, 3]
    crf = random_crf(K)
    T = max(lengths)
    emissions = torch.randn(len(lengths), T, K)
    tags = torch.randint(K, (len(lengths), T))
    mask = torch.arange(T).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    # garbage in the padding must not matter
    padded = emissions.masked_fill(~mask.unsqueeze(2), 1e3)
    nll = crf.nll(padded, tags, mask)
    best, _ = crf.decode(padded, mask)
    for b, n in enumerate(lengths):
        alone = crf.nll(emissions[b: b + 1, :n], tags[b: b + 1, :n])
        torch.testing.assert_close(nll[b: b + 1], alone)
        assert best[b, :n].tolist() == crf.decode(emissions[b: b + 1, :n])[0][0].tolist()


def test_gradients_against_finite_differences(float64_seeded):
    crf = random_crf(3)
    emissions = torch.randn(2, 4, 3, requires_grad=True)
    tags = torch.randint(3, (2, 4))
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    assert torch.autograd.gradcheck(lambda x: crf.nll(x, tags, mask), (emissions,))
    crf.nll(emissions.detach(), tags, mask).sum().backward()
    eps = 1e-6
    for p in crf.parameters():  # transitions, start, end: central differences entry by entry
        flat = p.data.view(-1)
        numeric = torch.zeros_like(flat)
        for i in range(flat.numel()):
            old = flat[i].item()
            flat[i] = old + eps
            up = crf.nll(emissions.detach(), tags, mask).sum()
            flat[i] = old - eps
            down = crf.nll(emissions.detach(), tags, mask).sum()
            flat[i] = old
            numeric[i] = (up - down) / (2 * eps)
        torch.testing.assert_close(p.grad.view(-1), numeric, atol=1e-6, rtol=1e-5)


def test_gradient_of_log_z_is_the_marginals(float64_seeded):
    """∂ log Z / ∂ P[t, j] = p(y_t = j | x): the brute-force marginals."""
    crf = random_crf(3)
    emissions = torch.randn(1, 3, 3, requires_grad=True)
    crf.log_partition(emissions).sum().backward()
    paths = list(itertools.product(range(3), repeat=3))
    probs = torch.softmax(torch.stack([path_score(crf, emissions[0].detach(), p) for p in paths]), 0)
    marginals = torch.zeros(3, 3, dtype=torch.float64)
    for p, pr in zip(paths, probs):
        for t, j in enumerate(p):
            marginals[t, j] += pr
    torch.testing.assert_close(emissions.grad[0], marginals)


def test_bad_shapes_raise():
    crf = CRF(3)
    with pytest.raises(ValueError, match="emissions must be"):
        crf.log_partition(torch.randn(2, 4, 5))
    with pytest.raises(ValueError, match="mask"):
        crf.log_partition(torch.randn(2, 4, 3), torch.zeros(2, 4, dtype=torch.bool))
