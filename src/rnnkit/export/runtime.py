"""Inference around exported rnnkit graphs with only NumPy: CRF Viterbi, greedy and beam search over onnxruntime.

This file imports nothing but NumPy; `rnnkit export` copies it next to the .onnx files as ``rnnkit_runtime.py``
so that an application needs neither torch nor rnnkit. It mirrors rnnkit.nn.crf.CRF.decode and
rnnkit.tasks.decode (greedy, beam_search) step for step; the tests check that both give the same results.

    import json, onnxruntime as ort, rnnkit_runtime as rt
    meta = json.load(open("model.json"))
    enc = ort.InferenceSession("encoder.onnx"); dec = ort.InferenceSession("decoder_step.onnx")
    hyps = rt.beam_search(enc, dec, {"src": src, "src_lengths": lengths}, lengths, beam=5)

An export with ``--format pt2`` runs the same way with ``Program("encoder")`` for each session: onnxruntime's
``run`` / ``get_inputs`` / ``get_outputs`` over torch.export's program (that class imports torch).
"""

from __future__ import annotations

import numpy as np

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3  # seq2seq vocabularies start with <pad> <unk> <bos> <eos>
NEVER = (PAD_ID, BOS_ID)  # tokens a search never outputs


class _Name:
    def __init__(self, name: str):
        self.name = name


class Program:
    """A program of a ``--format pt2`` export (NAME.pt2 in DIRECTORY, names from model.json) with the interface of
    an onnxruntime.InferenceSession: ``run(output_names or None, {input name: array})`` -> a list of arrays."""

    def __init__(self, name: str, directory="."):
        import json
        from pathlib import Path

        import torch

        self.torch = torch
        spec = json.loads((Path(directory) / "model.json").read_text())["graphs"][name]
        self.inputs, self.outputs = [i["name"] for i in spec["inputs"]], [o["name"] for o in spec["outputs"]]
        self.module = torch.export.load(Path(directory) / spec["file"]).module()

    def get_inputs(self) -> list:
        return [_Name(n) for n in self.inputs]

    def get_outputs(self) -> list:
        return [_Name(n) for n in self.outputs]

    def run(self, output_names, feeds: dict) -> list:
        with self.torch.no_grad():
            values = self.module(*(self.torch.as_tensor(np.asarray(feeds[n])) for n in self.inputs))
        named = dict(zip(self.outputs, (v.numpy() for v in values)))
        return [named[n] for n in (output_names or self.outputs)]


# ---- CRF ---------------------------------------------------------------------------------------------------
def viterbi(emissions, lengths, transitions, start=None, end=None) -> list[list[int]]:
    """Best tag sequence of each row: emissions (B, T, K), lengths (B,), transitions A (K, K) (row: previous
    tag), start π and end ε (K,) or None; returns one list of `lengths[b]` tag ids per row."""
    emissions = np.asarray(emissions, dtype=np.float32)
    A = np.asarray(transitions, dtype=np.float32)
    K = A.shape[0]
    start = np.zeros(K, np.float32) if start is None else np.asarray(start, dtype=np.float32)
    end = np.zeros(K, np.float32) if end is None else np.asarray(end, dtype=np.float32)
    paths = []
    for row, n in zip(emissions, np.asarray(lengths).tolist()):
        delta = start + row[0]  # (K,)
        pointers = []
        for t in range(1, n):
            scores = delta[:, None] + A  # (K, K): previous tag i -> tag j
            pointers.append(scores.argmax(0))
            delta = scores.max(0) + row[t]
        tag = int((delta + end).argmax())
        path = [tag]
        for arg in reversed(pointers):
            tag = int(arg[tag])
            path.append(tag)
        paths.append(path[::-1])
    return paths


# ---- seq2seq -------------------------------------------------------------------------------------------------
def log_probs(logits) -> np.ndarray:
    """log-softmax over the tokens a search may output (<pad> and <bos> get probability 0)."""
    x = np.array(logits, dtype=np.float32)
    x[..., list(NEVER)] = -np.inf
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def max_lengths(src_lengths, a: float = 1.5, b: int = 10) -> np.ndarray:
    """⌊a · |x| + b⌋ output tokens at most (at least 1), per sentence."""
    bound = np.floor(np.float32(a) * np.asarray(src_lengths, dtype=np.float32) + np.float32(b))
    return np.maximum(bound.astype(np.int64), 1)


class Decoder:
    """Runs an exported encoder and decoder step (onnxruntime sessions) with the state as a dict of arrays."""

    def __init__(self, encoder, step):
        self.encoder, self.step_session = encoder, step
        self.state_names = [i.name for i in step.get_inputs() if i.name != "y_prev"]
        self.memory_names = [n for n in ("memory", "keys", "src_mask") if n in self.state_names]
        self.out_names = [o.name for o in step.get_outputs()]

    def encode(self, inputs: dict) -> dict:
        names = [o.name for o in self.encoder.get_outputs()]
        values = dict(zip(names, self.encoder.run(None, inputs)))
        return {n: values[n if n in values else n + "0"] for n in self.state_names}

    def step(self, y, state: dict):
        """logits (B, V), the new state, attention (B, S) or None."""
        out = dict(zip(self.out_names, self.step_session.run(None, {"y_prev": y, **state})))
        new = {n: out[n + "_next"] if n not in self.memory_names else state[n] for n in self.state_names}
        return out["logits"], new, out.get("attention")

    @staticmethod
    def reorder(state: dict, index) -> dict:
        return {n: (v[:, index] if n in ("h", "c") else v[index]) for n, v in state.items()}


def greedy(encoder, step, inputs: dict, src_lengths, max_len_a: float = 1.5, max_len_b: int = 10) -> list[dict]:
    """The most probable token at every step until <eos> or ⌊a·|x| + b⌋; one dict per sentence:
    tokens (ids without <eos>), score (Σ log p, <eos> included), attention (len(tokens) + 1, |x|) or None."""
    dec = Decoder(encoder, step)
    state = dec.encode(inputs)
    limit = max_lengths(src_lengths, max_len_a, max_len_b)
    B = len(limit)
    y = np.full(B, BOS_ID, dtype=np.int64)
    done, score = np.zeros(B, bool), np.zeros(B, np.float32)
    tokens, weights = [], []
    for t in range(int(limit.max())):
        logits, state, w = dec.step(y, state)
        logp = log_probs(logits)
        y = np.where(limit <= t + 1, EOS_ID, logp.argmax(-1)).astype(np.int64)  # forced end at the bound
        score += np.where(done, 0.0, logp[np.arange(B), y]).astype(np.float32)
        tokens.append(np.where(done, EOS_ID, y))
        weights.append(w)
        done |= y == EOS_ID
        if done.all():
            break
    return _hypotheses(np.stack(tokens, 1), score, weights, src_lengths)


def beam_search(encoder, step, inputs: dict, src_lengths, beam: int = 5, length_penalty: float = 0.0,
                max_len_a: float = 1.5, max_len_b: int = 10) -> list[dict]:
    """Batched beam search (rnnkit.tasks.decode.beam_search): the best of `beam` hypotheses per sentence under
    score / |y|^length_penalty; finished hypotheses are extended by <eos> at cost 0."""
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    dec = Decoder(encoder, step)
    state = dec.encode(inputs)
    src_lengths = np.asarray(src_lengths)
    B, K = len(src_lengths), beam
    rows = np.repeat(np.arange(B), K)  # hypothesis -> its sentence
    state = dec.reorder(state, rows)
    limit = np.repeat(max_lengths(src_lengths, max_len_a, max_len_b), K)
    score = np.full((B, K), -np.inf, np.float32)
    score[:, 0] = 0.0
    y = np.full(B * K, BOS_ID, dtype=np.int64)
    done, length = np.zeros(B * K, bool), np.zeros(B * K, np.int64)
    parents, tokens, weights = [], [], []
    for t in range(int(limit.max())):
        logits, state, w = dec.step(y, state)
        logp = log_probs(logits)  # (B·K, V)
        V = logp.shape[1]
        ended = done | (limit <= t + 1)
        forced = np.full_like(logp, -np.inf)
        forced[:, EOS_ID] = np.where(done, 0.0, logp[:, EOS_ID])
        logp = np.where(ended[:, None], forced, logp)
        total = (score.reshape(B * K, 1) + logp).reshape(B, K * V)
        flat = np.argsort(-total, axis=1, kind="stable")[:, :K]  # (B, K), best first
        score = np.take_along_axis(total, flat, 1)
        parent = (flat // V + np.arange(B)[:, None] * K).reshape(-1)
        y = (flat % V).reshape(-1).astype(np.int64)
        state = dec.reorder(state, parent)
        length = length[parent] + (~done[parent]).astype(np.int64)
        done = done[parent] | (y == EOS_ID)
        parents.append(parent)
        tokens.append(y)
        weights.append(w)
        if done.all():
            break
    flat_score = score.reshape(-1)
    final = flat_score / np.maximum(length, 1).astype(np.float32) ** length_penalty if length_penalty else flat_score
    best = final.reshape(B, K).argmax(1) + np.arange(B) * K
    row, ids, alphas = best, [], []
    for t in range(len(tokens) - 1, -1, -1):
        ids.append(tokens[t][row])
        if weights[t] is not None:
            alphas.append(weights[t][parents[t][row]])
        row = parents[t][row]
    return _hypotheses(np.stack(ids[::-1], 1), flat_score[best], alphas[::-1] or [None], src_lengths)


def _hypotheses(tokens, score, weights: list, src_lengths) -> list[dict]:
    att = None if weights[0] is None else np.stack(weights, 1)  # (B, T, S)
    out = []
    for b, row in enumerate(tokens.tolist()):
        n = row.index(EOS_ID) if EOS_ID in row else len(row)
        alpha = None if att is None else att[b, : n + 1, : int(src_lengths[b])]
        out.append({"tokens": row[:n], "score": float(score[b]), "attention": alpha})
    return out
