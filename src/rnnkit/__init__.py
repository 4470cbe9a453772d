"""rnnkit: recurrent neural networks, verified and fast."""

__version__ = "0.1.0"

from rnnkit.nn import CELLS, GRU, LSTM, RNN, LSTMState, Recurrent  # noqa: E402

__all__ = ["CELLS", "GRU", "LSTM", "RNN", "LSTMState", "Recurrent", "__version__"]
