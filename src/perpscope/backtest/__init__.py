"""Bar-based backtests of perpetuals: funding as cash flows, intra-bar stops, mark liquidation.

``types`` holds the inputs (aligned market arrays, strategy signals, engine configuration),
``engine`` the numba kernel, ``reference`` the plain-Python oracle of the same rules, ``stats``
the statistics, ``strategies`` the strategy functions and ``loader`` the store reader.
"""
