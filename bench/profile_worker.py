"""Where a worker's time goes under a fill backlog: py-spy samples of a real `spma worker`.

`python -m bench.profile_worker [SECONDS]` starts the pipeline benchmark's set-up (embedded
broker, one worker, the demo market, 2,000 funded accounts), records the worker with py-spy while
20,000 fills are blasted at it, and prints the functions with the largest inclusive and own
shares of the samples; the raw folded stacks go to reports/profile_worker.txt (flamegraph input).
Not part of `make bench`: it needs py-spy's ptrace rights, which some containers withhold.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.bench_pipeline import fund_accounts, steady_rate, wait_ready
from bench.pipeline_kit import Pipeline
from bench.report import REPORTS

FILLS = 20_000
ACCOUNTS = 2_000
SHOWN = 30


def folded_shares(path: Path) -> tuple[int, Counter[str], Counter[str]]:
    """Samples, inclusive and own counts per function from py-spy's raw (folded) output."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [
            re.sub(r"\(/\S*?(site-packages|lib/python3\.\d+|main)/", "(", f)
            for f in stack.split(";")
        ]
        frames = [re.sub(r":\d+\)$", ")", f) for f in frames]
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    return total, inclusive, own


def record(seconds: float, out: Path) -> float:
    """Profile the worker while it works through the backlog; its fills a second."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with tempfile.TemporaryDirectory() as tmp:
        pipe = Pipeline.start(Path(tmp))
        try:
            worker = pipe.start_worker()
            status = pipe.listener(["margin-status"])
            pipe.seed_market()
            wait_ready(pipe, status, 120)
            accounts = fund_accounts(pipe, status, "tp", ACCOUNTS)
            fills = pipe.fills(accounts, FILLS, seed=1)
            args = ["record", "-p", str(worker.pid), "-f", "raw", "-o", str(out)]
            sampler = subprocess.Popen([spy, *args, "-d", str(int(seconds)), "-r", "200"])
            time.sleep(0.5)
            before = len(status.seen)
            pipe.send_raw(fills)
            status.wait(b"tp-", ACCOUNTS + len(fills), 300)
            arrived = [t for k, t in status.seen[before:] if k.startswith(b"tp-")]
            sampler.wait(timeout=seconds + 30)
            status.close()
        finally:
            pipe.stop()
    return steady_rate(arrived)


def main() -> None:
    """Record, then print the shares."""
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 8.0
    REPORTS.mkdir(parents=True, exist_ok=True)
    out = REPORTS / "profile_worker.txt"
    rate = record(seconds, out)
    total, inclusive, own = folded_shares(out)
    print(f"worker profile: {total} samples, {rate:,.0f} fills/s; folded stacks in {out}")
    for title, counts in (("inclusive", inclusive), ("own", own)):
        print(f"-- {title}")
        for frame, n in counts.most_common(SHOWN):
            print(f"{100 * n / total:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
