"""Suite-wide settings: the tests use tiny tensors, for which one thread is fastest and least noisy."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def float64_seeded():
    """Float64 by default and a fixed seed, for comparisons against oracles at tight tolerances."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(old)
