"""Classification metrics, all computed from one confusion matrix.

For K classes, C[i, j] = number of examples of true class i predicted as class j (rows: truth, columns:
prediction, as `sklearn.metrics.confusion_matrix`). With tp_k = C[k, k], fp_k = sum_i C[i, k] - tp_k
(predicted k, wrongly) and fn_k = sum_j C[k, j] - tp_k (class k, missed):

    accuracy    = sum_k tp_k / sum_ij C[i, j]
    precision_k = tp_k / (tp_k + fp_k)          0 when class k is never predicted
    recall_k    = tp_k / (tp_k + fn_k)          0 when class k never occurs
    F1_k        = 2 tp_k / (2 tp_k + fp_k + fn_k)   (the harmonic mean of precision_k and recall_k)
    macro-F1    = mean of F1_k over the classes that occur or are predicted (tp_k + fp_k + fn_k > 0)

The conventions (0 for an empty denominator; macro average over the labels present in the truth or the
predictions) are scikit-learn's with ``zero_division=0``, which the tests use as the independent oracle.
The confusion matrix is a sum over examples, so it can be accumulated batch by batch (and over processes).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
    """(K, K) int64 counts: C[i, j] = #{n : y_true[n] = i and y_pred[n] = j}."""
    t = np.asarray(y_true, dtype=np.int64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred must have the same length, got {t.size} and {p.size}")
    for name, y in (("y_true", t), ("y_pred", p)):
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"{name} must hold class indices in [0, {num_classes}), found {y.min()}..{y.max()}")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros(num.shape, dtype=np.float64), where=den > 0)


def accuracy(cm: np.ndarray) -> float:
    total = cm.sum()
    return float(np.trace(cm) / total) if total > 0 else 0.0


def precision_recall_f1(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall and F1, each (K,)."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    predicted = cm.sum(axis=0)  # tp + fp
    actual = cm.sum(axis=1)  # tp + fn
    return _ratio(tp, predicted), _ratio(tp, actual), _ratio(2 * tp, predicted + actual)


def macro_f1(cm: np.ndarray) -> float:
    """Unweighted mean of F1_k over the classes present in the truth or the predictions."""
    cm = np.asarray(cm)
    present = (cm.sum(axis=0) + cm.sum(axis=1)) > 0
    if not present.any():
        return 0.0
    return float(precision_recall_f1(cm)[2][present].mean())


def classification_metrics(cm: np.ndarray, labels: Sequence[str]) -> dict[str, float]:
    """Flat metrics for metrics.jsonl: accuracy, macro_f1, precision/<label>, recall/<label>, f1/<label>
    and confusion/<true>/<predicted> (counts)."""
    cm = np.asarray(cm)
    if cm.shape != (len(labels), len(labels)):
        raise ValueError(f"confusion matrix must be ({len(labels)}, {len(labels)}), got {cm.shape}")
    precision, recall, f1 = precision_recall_f1(cm)
    out = {"accuracy": accuracy(cm), "macro_f1": macro_f1(cm)}
    for k, label in enumerate(labels):
        out[f"precision/{label}"] = float(precision[k])
        out[f"recall/{label}"] = float(recall[k])
        out[f"f1/{label}"] = float(f1[k])
    for i, true in enumerate(labels):
        for j, pred in enumerate(labels):
            out[f"confusion/{true}/{pred}"] = float(cm[i, j])
    return out


def confusion_from_metrics(metrics: dict, labels: Sequence[str]) -> np.ndarray:
    """The confusion matrix back from `classification_metrics`' flat entries."""
    return np.array([[metrics[f"confusion/{t}/{p}"] for p in labels] for t in labels], dtype=np.int64)


def format_report(cm: np.ndarray, labels: Sequence[str]) -> str:
    """A readable table: per-class precision/recall/F1/support, accuracy, macro-F1, then the confusion matrix."""
    cm = np.asarray(cm)
    precision, recall, f1 = precision_recall_f1(cm)
    width = max(10, *(len(str(label)) for label in labels))
    lines = [f"{'class':>{width}}  precision  recall     f1  support"]
    for k, label in enumerate(labels):
        lines.append(f"{label:>{width}}  {precision[k]:9.4f}  {recall[k]:6.4f}  {f1[k]:.4f}  {int(cm[k].sum()):7d}")
    lines.append(f"accuracy {accuracy(cm):.4f}  macro-F1 {macro_f1(cm):.4f}  ({int(cm.sum())} examples)")
    lines.append("confusion matrix (rows: true class, columns: predicted):")
    cell = max(6, len(str(int(cm.max()))) + 1 if cm.size else 6, *(len(str(label)) + 1 for label in labels))
    lines.append(" " * width + "".join(f"{label:>{cell}}" for label in labels))
    for k, label in enumerate(labels):
        lines.append(f"{label:>{width}}" + "".join(f"{int(v):>{cell}}" for v in cm[k]))
    return "\n".join(lines)


# ---- translation: BLEU and chrF (sacrebleu) -----------------------------------------------------------------


def translation_scores(hypotheses: Sequence[str], references: Sequence[str], lowercase: bool = False) -> dict:
    """Corpus BLEU and chrF of detokenised `hypotheses` against raw `references` (one reference per sentence),
    computed by sacrebleu with its defaults (BLEU: 13a tokenisation, exp smoothing; chrF: n = 6, beta = 2),
    so the numbers compare with published sacreBLEU scores; `lowercase`: case-insensitive (runs trained on
    lowercased text). Returns {"bleu", "chrf", "bleu_signature", "chrf_signature"}."""
    from sacrebleu.metrics import BLEU, CHRF

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    bleu, chrf = BLEU(lowercase=lowercase), CHRF(lowercase=lowercase)
    refs = [list(references)]
    return {"bleu": bleu.corpus_score(list(hypotheses), refs).score,
            "chrf": chrf.corpus_score(list(hypotheses), refs).score,
            "bleu_signature": str(bleu.get_signature()), "chrf_signature": str(chrf.get_signature())}


def tokenized_bleu(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> float:
    """BLEU on the run's own tokens (sacrebleu with tokenize="none"): comparable only between runs that
    tokenise alike; the second line of `rnnkit eval`. The input is tokenised on purpose: force=True keeps
    sacrebleu from warning that it "looks like you forgot to detokenize" (a warning about this line, not BLEU)."""
    from sacrebleu.metrics import BLEU

    return BLEU(tokenize="none", force=True).corpus_score([" ".join(h) for h in hypotheses],
                                              [[" ".join(r) for r in references]]).score
