"""What the server computes, per task and backend: validated inputs in, JSON-ready outputs out.

An engine has ``check(inputs) -> items`` (raises InputError, answered 422), ``run(items) -> outputs`` (one
call per micro-batch, from the batching thread) and the task's extras (``generate`` for lm). The torch backend
calls the task modules' own functions (classify.predict_proba, tag.predict, forecast's model, tree's
predict_trees, decode.translate, generate_steps); the onnx backend runs the graphs of rnnkit.export through
onnxruntime (exported at start-up from the run's safetensors, into a temporary directory).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch


class InputError(ValueError):
    """A request whose content cannot be served (wrong type, too long, too many): HTTP 422."""


def best_metrics(run_dir, task) -> dict:
    """The validation metrics of the best epoch (the Trainer's monitor), {} when none was validated."""
    from rnnkit.train.progress import read_metrics

    try:
        records = [r for r in read_metrics(run_dir) if r.get("split") == "valid"]
    except (OSError, ValueError):
        return {}
    monitor, mode = getattr(task, "monitor", "loss"), getattr(task, "monitor_mode", "min")
    records = [r for r in records if monitor in r.get("metrics", {})]
    if not records:
        return {}
    pick = min if mode == "min" else max
    best = pick(records, key=lambda r: r["metrics"][monitor])
    return {"epoch": best.get("epoch"), **best["metrics"]}


class Engine:
    """Shared: the loaded run, the backend, the limits; subclasses write check / run."""

    endpoint = "predict"

    task = ""
    metrics: dict = {}

    def __init__(self, run, backend: str, limits, onnx_dir: Path | None = None, threads: int = 1):
        self.run, self.backend, self.limits = run, backend, limits
        self.sessions = {}
        if onnx_dir is not None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads  # one model call at a time (the batcher): its threads only
            options.inter_op_num_threads = 1
            for f in sorted(onnx_dir.glob("*.onnx")):
                self.sessions[f.stem] = ort.InferenceSession(str(f), options, providers=["CPUExecutionProvider"])

    def texts(self, inputs, what: str = "text") -> list[list[str]]:
        out = []
        split = getattr(self.run.task, "tokenize", str.split)  # a classify run's own tokenizer; tag: words
        for k, x in enumerate(inputs):
            tokens = split(x) if isinstance(x, str) else x
            if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
                raise InputError(f"inputs[{k}]: expected a {what} (a string, or a list of tokens)")
            if not tokens:
                raise InputError(f"inputs[{k}]: expected at least one token, found an empty {what}")
            if len(tokens) > self.limits.max_tokens:
                raise InputError(f"inputs[{k}]: {len(tokens)} tokens, more than the limit of {self.limits.max_tokens}")
            out.append(tokens)
        return out

    def check(self, inputs) -> list:
        raise NotImplementedError

    def run_batch(self, items) -> list:
        raise NotImplementedError

    def info(self) -> dict:
        return {}

    def threads(self) -> int:
        """The threads a model call uses: onnxruntime's intra-op threads, or torch's (the process's own)."""
        if self.sessions:
            return next(iter(self.sessions.values())).get_session_options().intra_op_num_threads
        return torch.get_num_threads()


def length_groups(lengths, step_cost: float = 1.0, call_cost: float = 20.0, largest: int = 64) -> list[list[int]]:
    """Split a batch into runs of similar length: index lists (each sorted by length) covering every index once.

    ONNX's recurrent operators compute every row up to the batch's longest length (``sequence_lens`` masks the
    padding, it does not skip it), so a batch of 5- to 30-token texts pays 30 steps for each. A group of b
    rows of at most T tokens is costed ``T * (b + step_cost) + call_cost`` (in row-steps: a step's fixed cost,
    a call's fixed cost; measured on the classify model of bench/serve.py), and the cheapest split of the
    length-sorted batch into contiguous groups of at most ``largest`` rows is found by dynamic programming.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    n = len(order)
    best, cut = [0.0] + [math.inf] * n, [0] * (n + 1)
    for j in range(1, n + 1):
        longest = lengths[order[j - 1]]  # the longest of rows i..j-1 (sorted)
        for i in range(max(0, j - largest), j):
            cost = best[i] + longest * (j - i + step_cost) + call_cost
            if cost < best[j]:
                best[j], cut[j] = cost, i
    groups, j = [], n
    while j:
        groups.append(order[cut[j]: j])
        j = cut[j]
    return groups[::-1]


def grouped(fn, items: list, lengths) -> list:
    """fn(sub-list) -> results, run on the length_groups of items; the results in the order of items."""
    out = [None] * len(items)
    for group in length_groups(lengths):
        for i, r in zip(group, fn([items[i] for i in group])):
            out[i] = r
    return out


def _pad(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    out = np.zeros((len(rows), int(lengths.max())), dtype=np.int64)
    for b, r in enumerate(rows):
        out[b, : len(r)] = r
    return out, lengths


# ---- classify -----------------------------------------------------------------------------------------------
class ClassifyEngine(Engine):
    def check(self, inputs):
        return self.texts(inputs)

    def run_batch(self, items):
        from rnnkit.tasks import classify

        labels = self.run.task.labels
        if self.backend == "torch":  # packed sequences: no step is spent on padding
            probs = classify.predict_proba(self.run, items).numpy()
        else:
            probs = grouped(self._onnx_probs, items, [len(t) for t in items])
        return [{"label": labels[int(p.argmax())], "probs": dict(zip(labels, map(float, p)))} for p in probs]

    def _onnx_probs(self, items) -> list[np.ndarray]:
        tokens, lengths = _pad([self.run.task.encode(t) for t in items])
        (probs,) = self.sessions["model"].run(["probs"], {"tokens": tokens, "lengths": lengths})
        return list(probs)

    def info(self):
        return {"labels": self.run.task.labels}


# ---- tag ------------------------------------------------------------------------------------------------------
class TagEngine(Engine):
    def check(self, inputs):
        return self.texts(inputs, "sentence")

    def run_batch(self, items):
        from rnnkit.tasks import tag

        if self.backend == "torch":
            tags = tag.predict(self.run, items)
        else:
            tags = grouped(self._onnx_tags, items, [len(w) for w in items])
        return [{"tokens": w, "tags": t} for w, t in zip(items, tags)]

    def _onnx_tags(self, items) -> list[list[str]]:
        from rnnkit.export import runtime
        from rnnkit.tasks import tag

        batch = tag.collate(tag.encode([tag.Sentence(w, None, 0) for w in items], self.run.task))
        feeds = {"words": batch.words.numpy(), "lengths": batch.lengths.numpy()}
        if self.run.model.chars is not None:
            feeds.update(chars=batch.chars.numpy(), char_lengths=batch.char_lengths.numpy())
        (emissions,) = self.sessions["model"].run(["emissions"], feeds)
        crf, names = self.run.model.crf, self.run.task.tags.itos
        if crf is None:
            ids = [row[:n].argmax(-1).tolist() for row, n in zip(emissions, batch.lengths.tolist())]
        else:
            ids = runtime.viterbi(emissions, batch.lengths.numpy(), crf.transitions.detach().numpy(),
                                  None if crf.start is None else crf.start.detach().numpy(),
                                  None if crf.end is None else crf.end.detach().numpy())
        return [[names[k] for k in row] for row in ids]

    def info(self):
        return {"tags": self.run.task.tags.itos}


# ---- forecast ------------------------------------------------------------------------------------------------
def _per_input(value, n: int, name: str) -> list:
    """A request-wide option as one value per input: a list of n values, or one value for every input."""
    if not isinstance(value, list):
        return [value] * n
    if len(value) != n:
        raise InputError(f"{name}: expected one value per input ({n}), found {len(value)}")
    return value


class ForecastEngine(Engine):
    def check(self, inputs, start=None, series=None):
        """Items (values (T, C), season position of the window's first row, series index (-1: unseen)).

        ``start``: the season position of each history's first row (default 0); ``series``: each history's
        series id (default none), looked up in the run's table of embedded series; an id not in it, or none,
        gets the mean embedding (an unseen series), as Forecaster.predict gives it for index -1."""
        values = self._values(inputs)
        m = max(self.run.model.config.season, 1)
        W, index = self.run.data.window, {sid: k for k, sid in enumerate(self.run.task.series)}
        starts = _per_input(0 if start is None else start, len(values), "start")
        ids = _per_input(series, len(values), "series")
        if any(s < 0 for s in starts):
            raise InputError(f"start: expected season positions >= 0, found {min(starts)}")
        return [(v, (s + len(v) - W) % m, -1 if sid is None else index.get(str(sid), -1))
                for v, s, sid in zip(values, starts, ids)]

    def _values(self, inputs) -> list[np.ndarray]:
        norm, W = self.run.normalizer, self.run.data.window
        C = len(norm.columns)
        out = []
        for k, rows in enumerate(inputs):
            try:
                values = np.asarray(rows, dtype=np.float64)
            except (TypeError, ValueError):
                raise InputError(f"inputs[{k}]: expected a list of numbers (or of rows of {C} numbers)") from None
            values = values[:, None] if values.ndim == 1 and C == 1 else values
            if values.ndim != 2 or values.shape[1] != C:
                raise InputError(f"inputs[{k}]: expected rows of {C} values ({', '.join(norm.columns)}), "
                                 f"found shape {list(values.shape)}")
            if len(values) < W:
                raise InputError(f"inputs[{k}]: expected at least {W} rows (the model's window), found {len(values)}")
            if len(values) > self.limits.max_tokens:
                raise InputError(f"inputs[{k}]: {len(values)} rows, more than the limit of {self.limits.max_tokens}")
            if not np.isfinite(values).all():
                raise InputError(f"inputs[{k}]: expected finite numbers, found NaN or infinity")
            out.append(values)
        return out

    def run_batch(self, items):
        W, c = self.run.data.window, self.run.model.config
        windows = np.stack([v[-W:] for v, _, _ in items])  # (B, W, C)
        start = np.array([s for _, s, _ in items], dtype=np.int64)
        series = np.array([k for _, _, k in items], dtype=np.int64)
        if self.backend == "torch":
            with torch.no_grad():
                q = self.run.model.predict(torch.as_tensor(windows, dtype=torch.float32), torch.as_tensor(start),
                                           torch.as_tensor(series)).numpy()
        else:
            feeds = {"values": windows.astype(np.float32), "start": start, "series": series}
            names = {i.name for i in self.sessions["model"].get_inputs()}
            (q,) = self.sessions["model"].run(["quantiles"], {k: v for k, v in feeds.items() if k in names})
        y = q[..., c.point_index]
        band = self.band()
        out = []
        for (v, _, _), f, fq in zip(items, y.astype(np.float64), q.astype(np.float64)):
            result = {"history": v[:, 0].tolist(), "forecast": f.tolist()}
            if c.quantiles:
                result["quantiles"] = {f"{t:g}": fq[:, j].tolist() for j, t in enumerate(c.quantiles)}
            if band is not None:
                result.update(lower=(f - band).tolist(), upper=(f + band).tolist())
            out.append(result)
        return out

    def band(self) -> float | None:
        """Half-width of an approximate 95% interval: 1.96 · the best epoch's validation RMSE."""
        rmse = self.metrics.get("rmse")
        return None if rmse is None or not math.isfinite(rmse) else 1.96 * rmse

    def info(self):
        return {"columns": self.run.normalizer.columns, "window": self.run.data.window,
                "horizon": self.run.model.config.horizon, "example": self.example(),
                "interval": "forecast ± 1.96 · validation RMSE of the best epoch (approximate, Gaussian errors)"}

    def example(self) -> list | None:
        """The last 3 windows of the training file, when it is still readable (for the playground)."""
        from rnnkit.data import DataError

        try:
            series = self.run.data.read()
        except (DataError, OSError, ValueError):
            return None
        return series.values[-3 * self.run.data.window:].tolist()


# ---- tree ---------------------------------------------------------------------------------------------------------
class TreeEngine(Engine):
    def check(self, inputs):
        from rnnkit.data import DataError
        from rnnkit.data.trees import parse_tree

        out = []
        for k, x in enumerate(inputs):
            if not isinstance(x, str):
                raise InputError(f"inputs[{k}]: expected a bracketed tree such as '(3 (2 a) (4 b))'")
            try:
                tree = parse_tree(x, f"inputs[{k}]", num_classes=None)
            except DataError as e:
                raise InputError(str(e)) from None
            if len(tree.leaves()) > self.limits.max_tokens:
                raise InputError(f"inputs[{k}]: more than {self.limits.max_tokens} words")
            out.append(tree)
        return out

    def run_batch(self, items):
        from rnnkit.tasks.tree import predict_trees

        return [{"tree": str(t), "label": t.label} for t in predict_trees(self.run, items)]


# ---- lm -------------------------------------------------------------------------------------------------------
class LMEngine(Engine):
    endpoint = "generate"

    def prime_ids(self, prime: str) -> tuple[list[str], list[int]]:
        from rnnkit.data import EOS

        vocab, level = self.run.task.vocab, self.run.task.level
        tokens = self.run.task.tokenize(prime) if prime else []
        if len(tokens) > self.limits.max_tokens:
            raise InputError(f"prime: {len(tokens)} tokens, more than the limit of {self.limits.max_tokens}")
        start = tokens or [EOS if level == "word" else ("\n" if "\n" in vocab else vocab.itos[-1])]
        return tokens, vocab.encode(start)

    def generate(self, prime: str, length: int, options, seed: int | None):
        """Yield the generated tokens one at a time (strings)."""
        _, ids = self.prime_ids(prime)
        itos = self.run.task.vocab.itos
        if self.backend == "torch":
            from rnnkit.generate import generate_steps

            self.run.model.eval()
            for step in generate_steps(self.run.model, ids, length, 1, options, seed):
                yield itos[int(step.token[0])]
            return
        yield from (itos[i] for i in self._onnx_tokens(ids, length, options, seed))

    def _onnx_tokens(self, ids, length, options, seed):
        window, step = self.sessions["model"], self.sessions["step"]
        c = self.run.model.config
        names = [i.name[:-1] for i in window.get_inputs() if i.name.endswith("0")]
        if names == ["context"]:  # NPLM: the boundary id before the start
            initial = {"context0": np.full((1, c.context), c.vocab_size, np.int64)}
        else:
            initial = {n + "0": np.zeros((c.layers, 1, c.hidden), np.float32) for n in names}
        logits, *final, _ = window.run(None, {"tokens": np.array([ids], np.int64),
                                              "lengths": np.array([len(ids)], np.int64), **initial})
        state, last = dict(zip(names, final)), logits[0, len(ids) - 1]
        rng = np.random.default_rng(seed)
        for _ in range(length):
            token = sample(last, options, rng)
            yield token
            last, *new = step.run(None, {"token": np.array([token], np.int64), **state})
            last, state = last[0], dict(zip(names, new))

    def join(self, tokens: list[str]) -> str:
        from rnnkit.data import EOS

        task = self.run.task
        if task.tokenizer.subword:  # pieces carry their own word boundaries ("▁"), so a prime continues
            return "".join("\n" if t == EOS else t for t in tokens).replace("\u2581", " ")
        text = task.detokenize(tokens)
        return text if task.level == "char" else " " + text

    def info(self):
        return {"level": self.run.task.level, "tokenizer": self.run.task.tokenizer.kind,
                "vocab_size": len(self.run.task.vocab)}


def sample(logits: np.ndarray, options, rng) -> int:
    """One token from logits (V,) as rnnkit.generate.next_tokens draws it (greedy, temperature, top-k, top-p)."""
    if options.greedy:
        return int(logits.argmax())
    z = logits.astype(np.float64) / options.temperature
    if 0 < options.top_k < len(z):
        z = np.where(z < np.sort(z)[-options.top_k], -np.inf, z)
    p = np.exp(z - z.max())
    p /= p.sum()
    if options.top_p < 1.0:
        order = np.argsort(-p, kind="stable")
        before = np.cumsum(p[order]) - p[order]
        keep = np.zeros_like(p, dtype=bool)
        keep[order[before < options.top_p]] = True
        p = np.where(keep, p, 0.0)
        p /= p.sum()
    return int(rng.choice(len(p), p=p))


# ---- seq2seq --------------------------------------------------------------------------------------------------
class Seq2SeqEngine(Engine):
    endpoint = "translate"

    def check(self, inputs):
        t = self.run.task
        if t.src_vocab is None:
            raise InputError("this is a one→sequence run: its inputs are vectors, which /v1/translate does not take")
        out = []
        for k, x in enumerate(inputs):
            if not isinstance(x, str):
                raise InputError(f"inputs[{k}]: expected a sentence (a string)")
            tokens = t.tokenize(x)  # the run's own tokenizer (sentencepiece, moses, words, characters)
            if not tokens:
                raise InputError(f"inputs[{k}]: expected at least one token, found an empty sentence")
            if len(tokens) > min(self.limits.max_tokens, t.max_len or self.limits.max_tokens):
                raise InputError(f"inputs[{k}]: {len(tokens)} tokens, more than the limit of "
                                 f"{min(self.limits.max_tokens, t.max_len or self.limits.max_tokens)}")
            out.append((x, tokens))
        return out

    def run_batch(self, items):
        """items: (sentence, tokens, beam, attention wanted)."""
        results = [None] * len(items)
        for beam in sorted({it[2] for it in items}):
            rows = [i for i, it in enumerate(items) if it[2] == beam]
            for i, r in zip(rows, self._translate([items[i][1] for i in rows], beam, [items[i][0] for i in rows])):
                results[i] = r if items[i][3] else {k: v for k, v in r.items() if k != "attention"}
        return results

    def _translate(self, token_lists, beam: int, sentences=None) -> list[dict]:
        from rnnkit.tasks import decode

        t = self.run.task
        if self.backend == "torch":
            out = decode.translate(self.run, sentences, beam=beam)
            return [{"tokens": tr.tokens, "text": tr.text, "score": tr.score, "src_tokens": tr.src_tokens,
                     "attention": None if tr.attention is None else tr.attention.tolist()} for tr in out]
        from rnnkit.export import runtime

        src, lengths = _pad([t.src_vocab.encode(x) for x in token_lists])
        enc, step = self.sessions["encoder"], self.sessions["decoder_step"]
        inputs = {"src": src, "src_lengths": lengths}
        hyps = (runtime.greedy(enc, step, inputs, lengths) if beam == 1
                else runtime.beam_search(enc, step, inputs, lengths, beam=beam))
        out = []
        for x, h in zip(token_lists, hyps):
            words = t.tgt_vocab.decode(h["tokens"])
            out.append({"tokens": words, "text": t.detokenize(words), "score": h["score"],
                        "src_tokens": x, "attention": None if h["attention"] is None else h["attention"].tolist()})
        return out

    def info(self):
        task = self.run.task
        words = [] if task.src_vocab is None else task.src_vocab.itos[4:9]
        return {"attention": self.run.model.config.attention, "level": task.level,
                "tokenizer": task.src_tokenizer.kind, "example": task.src_tokenizer.decode(words)}


ENGINES = {"classify": ClassifyEngine, "tag": TagEngine, "forecast": ForecastEngine, "tree": TreeEngine,
           "lm": LMEngine, "seq2seq": Seq2SeqEngine}
