"""rnnkit: recurrent neural networks, verified and fast."""

__version__ = "0.1.0"

from rnnkit.nn import CELLS, GRU, LSTM, RNN, GRUCell, LSTMCell, LSTMState, Recurrent, RNNCell  # noqa: E402

__all__ = ["CELLS", "GRU", "GRUCell", "LSTM", "LSTMCell", "LSTMState", "RNN", "RNNCell", "Recurrent", "__version__"]
