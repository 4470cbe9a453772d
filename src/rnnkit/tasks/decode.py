"""Decoding a `Seq2Seq` model: greedy search, batched beam search, and translating / scoring files.

Both searches call `model.decode_step` (the function teacher-forced training uses) once per output position,
for the whole batch at once, and carry the decoder state as a value. Output length is bounded per sentence:

    max_len = ⌊a · |x| + b⌋        (|x| the source length; a = max_len_a, b = max_len_b; one→sequence: |x| = 1)

Beam search (beam K, batch B: B·K hypotheses decoded together). Hypothesis scores are log-probabilities
summed over the tokens; a hypothesis that has produced <eos> is finished and keeps its score (it can only be
extended by <eos> at cost 0, so it holds its place in the beam). The K best of the K·V extensions of each
sentence survive; states are reordered with one `index_select`. The returned hypothesis maximises

    score(y) / |y|^α        (|y| counts <eos>; α = length_penalty; α = 0: the plain sum of log-probabilities)

among the K final ones. With K = 1 this is greedy search.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from rnnkit.data import BOS, EOS, PAD, UNK
from rnnkit.data.parallel import read_lines
from rnnkit.tasks.seq2seq import SPECIALS, Seq2Seq, reorder_memory, reorder_state

BOS_ID, EOS_ID, UNK_ID = SPECIALS.index(BOS), SPECIALS.index(EOS), SPECIALS.index(UNK)
NEVER = (SPECIALS.index(PAD), BOS_ID)  # tokens a search never outputs


def log_probs(logits: Tensor) -> Tensor:
    """log p(y_t | ...) (..., V) with <pad> and <bos> excluded (set to probability 0, the rest renormalised)."""
    logits = logits.float().clone()
    logits[..., list(NEVER)] = float("-inf")
    return torch.log_softmax(logits, -1)


@dataclass
class Hypothesis:
    tokens: list[int]  # output ids without <bos> and <eos>
    score: float  # sum of log-probabilities, <eos> included
    attention: np.ndarray | None  # (len(tokens) + 1, S): α of every output step, <eos> step included


def max_lengths(src_lengths: Tensor, a: float, b: int) -> Tensor:
    return (a * src_lengths.float() + b).floor().long().clamp_min(1)


@torch.no_grad()
def greedy(model: Seq2Seq, src: Tensor, src_lengths: Tensor, max_len_a: float = 1.5,
           max_len_b: int = 10) -> list[Hypothesis]:
    """Pick the most probable token at every step until <eos> or the length bound (per sentence)."""
    model.eval()
    memory, state = model.encode(src, src_lengths)
    B, limit = src.shape[0], max_lengths(src_lengths, max_len_a, max_len_b)
    y = torch.full((B,), BOS_ID, dtype=torch.long, device=src.device)
    done = torch.zeros(B, dtype=torch.bool, device=src.device)
    score = torch.zeros(B, device=src.device)
    tokens, weights = [], []
    for t in range(int(limit.max())):
        logits, state, w = model.decode_step(y, state, memory)
        logp = log_probs(logits)
        y = logp.argmax(-1)
        y = torch.where(limit.to(y.device) <= t + 1, torch.full_like(y, EOS_ID), y)  # forced end at the bound
        score += torch.where(done, torch.zeros_like(score), logp.gather(1, y[:, None]).squeeze(1))
        tokens.append(torch.where(done, torch.full_like(y, EOS_ID), y))
        weights.append(w)
        done |= y == EOS_ID
        if bool(done.all()):
            break
    return _hypotheses(torch.stack(tokens, 1), score, weights, src_lengths)


def _hypotheses(tokens: Tensor, score: Tensor, weights: list, src_lengths: Tensor) -> list[Hypothesis]:
    """(B, T) ids (ending at the first <eos>) -> one Hypothesis per row; attention cut to the real source."""
    att = None if weights[0] is None else torch.stack(weights, 1).cpu().numpy()  # (B, T, S)
    out = []
    for b, row in enumerate(tokens.tolist()):
        n = row.index(EOS_ID) if EOS_ID in row else len(row)
        alpha = None if att is None else att[b, : n + 1, : int(src_lengths[b])]
        out.append(Hypothesis(row[:n], float(score[b]), alpha))
    return out


@torch.no_grad()
def beam_search(model: Seq2Seq, src: Tensor, src_lengths: Tensor, beam: int = 5, length_penalty: float = 0.0,
                max_len_a: float = 1.5, max_len_b: int = 10) -> list[Hypothesis]:
    """Batched beam search (see the module docstring); one best Hypothesis per source sentence.
    Searches never output <pad> or <bos>."""
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    model.eval()
    memory, state = model.encode(src, src_lengths)
    B, K, dev = src.shape[0], beam, src.device
    rows = torch.arange(B, device=dev).repeat_interleave(K)  # (B·K,) hypothesis -> its sentence
    memory, state = reorder_memory(memory, rows), reorder_state(state, rows)
    limit = max_lengths(src_lengths, max_len_a, max_len_b).to(dev).repeat_interleave(K)
    score = torch.full((B, K), float("-inf"), device=dev)
    score[:, 0] = 0.0  # one live hypothesis per sentence at the start: no duplicates in the beam
    y = torch.full((B * K,), BOS_ID, dtype=torch.long, device=dev)
    done = torch.zeros(B * K, dtype=torch.bool, device=dev)
    length = torch.zeros(B * K, dtype=torch.long, device=dev)
    parents, tokens, weights = [], [], []
    for t in range(int(limit.max())):
        logits, state, w = model.decode_step(y, state, memory)
        logp = log_probs(logits)  # (B·K, V)
        V = logp.shape[1]
        ended = done | (limit <= t + 1)
        logp = torch.where(ended[:, None], _only_eos(logp, done), logp)  # finished: <eos> for free; at the bound: <eos>
        total = (score.view(B * K, 1) + logp).view(B, K * V)
        score, flat = total.topk(K, dim=1)  # (B, K)
        parent = (flat // V + torch.arange(B, device=dev)[:, None] * K).view(-1)  # (B·K,) rows of the old beam
        y = (flat % V).view(-1)
        state = reorder_state(state, parent)
        length = length.index_select(0, parent) + (~done.index_select(0, parent)).long()
        done = done.index_select(0, parent) | (y == EOS_ID)
        parents.append(parent)
        tokens.append(y)
        weights.append(w)
        if bool(done.all()):
            break
    final = score.view(-1) / length.float().clamp_min(1) ** length_penalty if length_penalty else score.view(-1)
    best = final.view(B, K).argmax(1) + torch.arange(B, device=dev) * K  # (B,) rows of the best hypotheses
    return _backtrack(best, parents, tokens, weights, score.view(-1), src_lengths)


def _only_eos(logp: Tensor, done: Tensor) -> Tensor:
    """Rows that must end: <eos> is the only choice, at cost 0 for finished hypotheses and at its own
    log-probability for hypotheses that reach the length bound."""
    forced = torch.full_like(logp, float("-inf"))
    forced[:, EOS_ID] = torch.where(done, torch.zeros_like(logp[:, EOS_ID]), logp[:, EOS_ID])
    return forced


def _backtrack(best: Tensor, parents: list, tokens: list, weights: list, score: Tensor,
               src_lengths: Tensor) -> list[Hypothesis]:
    """Follow the parent pointers from the final rows `best` back to the first step."""
    row, ids, alphas = best, [], []
    for t in range(len(tokens) - 1, -1, -1):
        ids.append(tokens[t].index_select(0, row))
        if weights[t] is not None:
            alphas.append(weights[t].index_select(0, parents[t].index_select(0, row)))
        row = parents[t].index_select(0, row)
    ids.reverse()
    alphas.reverse()
    return _hypotheses(torch.stack(ids, 1), score.index_select(0, best), alphas or [None], src_lengths)


def sequence_log_prob(model: Seq2Seq, src: Tensor, src_lengths: Tensor, tgt: list[int]) -> float:
    """log p(tgt <eos> | src) of one sentence by teacher forcing, under the distribution the searches use
    (<pad> and <bos> excluded); for tests and rescoring."""
    with torch.no_grad():
        memory, state = model.encode(src, src_lengths)
        y_in = torch.tensor([[BOS_ID, *tgt]], device=src.device)
        logits, _ = model.decode(y_in, state, memory)
        logp = log_probs(logits)[0]
        return float(logp[torch.arange(len(tgt) + 1), torch.tensor([*tgt, EOS_ID])].sum())


# ---- translating text --------------------------------------------------------------------------------------


@dataclass
class Translation:
    src_tokens: list[str]
    tokens: list[str]
    text: str
    attention: np.ndarray | None  # (len(tokens) + 1, len(src_tokens))
    score: float


def translate(run, lines: list, beam: int = 1, length_penalty: float = 0.0, max_len_a: float = 1.5,
              max_len_b: int = 10, replace_unk: bool = False, batch_size: int = 64) -> list[Translation]:
    """Translate source sentences (strings; one→sequence runs: vectors) with a loaded run
    (`rnnkit.tasks.seq2seq.load_run`). Empty sentences give empty translations. With `replace_unk`, every
    output <unk> becomes the source token with the largest attention weight at that step."""
    task, model = run.task, run.model
    device = next(model.parameters()).device
    one_to_seq = task.src_vocab is None
    src_tokens = [[] if one_to_seq else task.tokenize(s) for s in lines]
    long = [i for i, t in enumerate(src_tokens) if task.max_len is not None and len(t) > task.max_len]
    if long:
        warnings.warn(f"input line {long[0] + 1}: {len(long)} sentence(s) longer than the run's max_len "
                      f"{task.max_len} truncated (the first has {len(src_tokens[long[0]])} tokens)", stacklevel=2)
        src_tokens = [t[: task.max_len] for t in src_tokens]
    results: list[Translation | None] = [None] * len(lines)
    todo = [i for i in range(len(lines)) if one_to_seq or src_tokens[i]]
    todo.sort(key=lambda i: len(src_tokens[i]))
    for start in range(0, len(todo), batch_size):
        chunk = todo[start: start + batch_size]
        src, lengths = _source_batch(task, [lines[i] for i in chunk], [src_tokens[i] for i in chunk], device)
        if beam == 1:
            hyps = greedy(model, src, lengths, max_len_a, max_len_b)
        else:
            hyps = beam_search(model, src, lengths, beam, length_penalty, max_len_a, max_len_b)
        for i, h in zip(chunk, hyps):
            results[i] = _to_translation(task, src_tokens[i], h, replace_unk)
    return [r or Translation([], [], "", None, 0.0) for r in results]


def _source_batch(task, lines: list, tokens: list, device):
    from rnnkit.data import pad

    if task.src_vocab is None:
        src = torch.as_tensor(np.stack([np.asarray(v, dtype=np.float32) for v in lines]))
        return src.to(device), torch.ones(len(lines), dtype=torch.long)
    src, lengths = pad([task.src_vocab.encode(t) for t in tokens], 0)
    return src.to(device), lengths


def _to_translation(task, src_tokens: list[str], h: Hypothesis, replace_unk: bool) -> Translation:
    words = task.tgt_vocab.decode(h.tokens)
    if replace_unk and h.attention is not None and src_tokens:
        words = [src_tokens[int(h.attention[t].argmax())] if i == UNK_ID else w
                 for t, (i, w) in enumerate(zip(h.tokens, words))]
    return Translation(src_tokens, words, task.detokenize(words), h.attention, h.score)


def evaluate_files(run_dir, src_path, tgt_path, beam: int = 1, length_penalty: float = 0.0,
                   batch_size: int = 64, replace_unk: bool = False, max_len_a: float = 1.5,
                   max_len_b: int = 10) -> dict:
    """BLEU and chrF (sacrebleu) of the translations of SRC against TGT, the reference perplexity, and
    BLEU on the run's own tokens.

    The translations are detokenised (the run's tokenizer) and scored against the raw lines of TGT with
    sacrebleu's defaults (13a; case-insensitive only for a run trained on lowercased text): the numbers
    compare with published sacreBLEU scores, and `bleu_signature` / `chrf_signature` say how they were
    computed. `bleu_tok`: BLEU of the output tokens against the references tokenised as the training data was."""
    from rnnkit.data.parallel import read_vectors
    from rnnkit.metrics import tokenized_bleu, translation_scores
    from rnnkit.tasks.seq2seq import Seq2SeqData, load_run
    from rnnkit.train import evaluate

    run = load_run(run_dir)
    t = run.task
    one_to_seq = t.src_vocab is None
    data = Seq2SeqData(src=None if one_to_seq else str(src_path), tgt=str(tgt_path),
                       features=str(src_path) if one_to_seq else None, level=t.level, lowercase=t.lowercase,
                       max_len=t.max_len, eval_batch_size=batch_size, valid_fraction=0.0)
    _, _, examples, _, _ = data.load((t.src_vocab, t.tgt_vocab), (t.src_tokenizer, t.tgt_tokenizer))
    metrics = evaluate(run.model, t, data.batches(examples, None, eval_only=True)[0])
    sources = list(read_vectors(src_path)) if one_to_seq else read_lines(src_path)
    refs = read_lines(tgt_path)
    translations = translate(run, sources, beam, length_penalty, max_len_a, max_len_b, replace_unk, batch_size)
    scores = translation_scores([tr.text for tr in translations], refs, lowercase=t.lowercase)
    low = (lambda x: x.lower()) if t.lowercase else (lambda x: x)  # noqa: E731
    tok_bleu = tokenized_bleu([tr.tokens for tr in translations], [t.tgt_tokenizer.encode(low(r)) for r in refs])
    return {"bleu": scores["bleu"], "chrf": scores["chrf"], "loss": metrics["loss"], "ppl": metrics["ppl"],
            "acc": metrics["acc"], "bleu_tok": tok_bleu, "bleu_signature": scores["bleu_signature"],
            "chrf_signature": scores["chrf_signature"]}


def plot_attention(translation: Translation, path) -> None:
    """Heatmap of α (rows: output tokens and <eos>, columns: source tokens) written to PATH (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if translation.attention is None:
        why = "the sentence is empty" if not translation.tokens else "the model was trained with --attention none"
        raise ValueError(f"no attention to plot: {why}")
    att = translation.attention
    rows = [*translation.tokens, EOS]
    cols = translation.src_tokens or ["<vector>"]
    fig, ax = plt.subplots(figsize=(max(3.0, 0.45 * len(cols) + 1.5), max(2.5, 0.4 * len(rows) + 1.2)))
    ax.imshow(att, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


