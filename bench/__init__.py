"""`make bench`: the engine, option repricing, the pipeline on the embedded broker, memory, and
proofs of liabilities, each printing `figure | value | target | ratio/ok` (bench/report.py).

The engine's targets are for one core: numpy's BLAS is held to one thread here, before numpy is
imported (the worker processes the pipeline benchmark starts inherit it too).
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
