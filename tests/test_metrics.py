"""rnnkit.metrics against scikit-learn (the independent oracle) on random labels."""
import numpy as np
import pytest
from sklearn import metrics as sk

from rnnkit.metrics import (
    accuracy,
    classification_metrics,
    confusion_from_metrics,
    confusion_matrix,
    format_report,
    macro_f1,
    precision_recall_f1,
)


@pytest.mark.parametrize("seed", range(20))
def test_against_sklearn_on_random_labels(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 7))
    n = int(rng.integers(1, 60))
    # skewed class probabilities, so some classes are often absent from the truth or the predictions
    y_true = rng.choice(k, size=n, p=rng.dirichlet(np.full(k, 0.5)))
    y_pred = np.where(rng.random(n) < 0.5, y_true, rng.choice(k, size=n, p=rng.dirichlet(np.full(k, 0.5))))
    cm = confusion_matrix(y_true, y_pred, k)
    np.testing.assert_array_equal(cm, sk.confusion_matrix(y_true, y_pred, labels=list(range(k))))
    assert accuracy(cm) == pytest.approx(sk.accuracy_score(y_true, y_pred))
    assert macro_f1(cm) == pytest.approx(sk.f1_score(y_true, y_pred, average="macro", zero_division=0))
    p, r, f = precision_recall_f1(cm)
    labels = list(range(k))
    np.testing.assert_allclose(p, sk.precision_score(y_true, y_pred, labels=labels, average=None, zero_division=0))
    np.testing.assert_allclose(r, sk.recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0))
    np.testing.assert_allclose(f, sk.f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0))


def test_confusion_matrix_is_a_sum_over_batches():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 4, 100), rng.integers(0, 4, 100)
    parts = sum(confusion_matrix(y_true[i:i + 7], y_pred[i:i + 7], 4) for i in range(0, 100, 7))
    np.testing.assert_array_equal(parts, confusion_matrix(y_true, y_pred, 4))


def test_hand_computed_example():
    # truth a a b b b c ; predicted a b b b c c
    cm = confusion_matrix([0, 0, 1, 1, 1, 2], [0, 1, 1, 1, 2, 2], 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 2, 1], [0, 0, 1]])
    p, r, f = precision_recall_f1(cm)
    np.testing.assert_allclose(p, [1, 2 / 3, 1 / 2])
    np.testing.assert_allclose(r, [1 / 2, 2 / 3, 1])
    np.testing.assert_allclose(f, [2 / 3, 2 / 3, 2 / 3])
    assert accuracy(cm) == pytest.approx(4 / 6)


def test_flat_metrics_round_trip_and_report():
    labels = ["neg", "pos"]
    cm = np.array([[5, 1], [2, 7]])
    m = classification_metrics(cm, labels)
    assert m["accuracy"] == pytest.approx(12 / 15)
    assert m["precision/pos"] == pytest.approx(7 / 8) and m["recall/neg"] == pytest.approx(5 / 6)
    np.testing.assert_array_equal(confusion_from_metrics(m, labels), cm)
    report = format_report(cm, labels)
    assert "accuracy 0.8000" in report and report.splitlines()[-1].split() == ["pos", "2", "7"]


def test_bad_indices_rejected():
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        confusion_matrix([0, 2], [0, 1], 2)
