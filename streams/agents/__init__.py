"""The Faust layer: the worker, its agents, tables, timers, web views and metrics."""
