"""Technical indicators used by the risk engine (numba kernels)."""
