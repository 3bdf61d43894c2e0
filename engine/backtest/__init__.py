"""Backtesting the margin model: price paths, portfolios held over them, the margin a parameter
set asks at each step against the loss realised over the liquidation horizon, and the statistics
a risk committee reads (coverage, exceptions, Kupiec, Christoffersen, Basel zones,
procyclicality)."""
