"""The risk console in a real browser: headless Chromium (Debian's package) driven by Playwright,
on two live workers holding the demo's exchange after a crash, with a token set.

The page is served by one worker and must show the whole deployment: its state counts are checked
against the margin-status topic (each account's last state) and against the sum of both workers'
``spma_accounts`` gauges, the fund's balance against the insurance-fund topic. Clicking an account
shows its view; the what-if form (POST /accounts/{id}/what-if) answers with the change, the
account after and before.
Screenshots go to reports/console/.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from streams.tools.simulator.runner import SimulatorLoop
from streams.tools.simulator.scenario import CrashScenario
from tests.streams.worker_harness import Collector, Harness, running

pytestmark = pytest.mark.broker
ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "reports" / "console"
TOKEN = "console-test-token"
ACCOUNTS = 60
SCENARIO = CrashScenario(accounts=ACCOUNTS, crash=0.35, steps=4, step_s=300.0, depth_floor=0.2)
OUTPUTS = ("margin-status", "insurance-fund", "adl", "liquidations")


def chromium() -> str | None:
    """The system's Chromium (Debian's package), if installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def deployment(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Two workers with a token, the demo's exchange seeded, a crash played, orders filled."""
    if chromium() is None:
        if os.environ.get("SPMA_TEST_BROWSER"):  # CI: the browser test must run
            pytest.fail("no Chromium and SPMA_TEST_BROWSER is set (.ci/run installs it)")
        pytest.skip("no Chromium: `apt-get install chromium` (.ci/run installs it)")
    logs = tmp_path_factory.mktemp("console")
    env = {"SPMA_WEB_TOKEN": TOKEN}
    with running(kafka_bootstrap, logs, workers=2, partitions=4, env=env) as harness:
        out = harness.collect(OUTPUTS)
        _play(harness, out)
        yield harness, out
        out.close()


def _play(harness: Harness, out: Collector) -> None:
    """The crash through the simulator, until the loop is quiet."""
    ex = SCENARIO.seed(datetime.now(tz=UTC).replace(microsecond=0) - timedelta(hours=2))
    sim = SimulatorLoop(harness.settings, harness.codec, group=harness.app_id)
    try:
        sim.seed(ex.inputs, timeout_s=180)
        accounts = {key for topic, key, _ in ex.inputs if topic in ("fills", "collateral")}
        out.wait(
            lambda c: {s.account for s in c.decoded("margin-status")} >= accounts,  # type: ignore[attr-defined]
            timeout_s=180,
            what="every account's first status",
        )
        for k in range(SCENARIO.steps):
            sim.publish(SCENARIO.step(ex, k))
            sim.pump(quiet_s=3.0, timeout_s=180)
        out.settle(quiet_s=4.0, timeout_s=180)
    finally:
        sim.close()


def _topic_states(out: Collector) -> dict[str, int]:
    """Accounts by their last state on the margin-status topic."""
    last = {s.account: s.state.value for s in out.decoded("margin-status")}  # type: ignore[attr-defined]
    return dict(Counter(last.values()))


def _gauge_states(harness: Harness) -> dict[str, int]:
    """Accounts by state, the sum of every worker's spma_accounts gauges."""
    total: Counter[str] = Counter()
    for port in harness.web_ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        for state, value in re.findall(r'^spma_accounts\{state="(\w+)"\} (\S+)$', text, re.M):
            total[state] += int(float(value))
    return {k: v for k, v in total.items() if v}


def _page_states(page: Any) -> dict[str, int]:
    """The state cards as the page shows them."""
    states = {}
    for state in ("HEALTHY", "MARGIN_CALL", "LIQUIDATION", "BANKRUPT"):
        text = page.locator(f"#count-{state}").inner_text().replace(",", "")
        if text.isdigit() and int(text):
            states[state] = int(text)
    return states


def _eventually(check: Any, timeout_s: float = 30.0) -> Any:
    """Retry a check until it returns a truthy value (the page polls every two seconds)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def test_the_console_shows_the_deployment_an_account_and_a_what_if(deployment: Any) -> None:
    from playwright.sync_api import sync_playwright

    harness, out = deployment
    expected = _topic_states(out)
    assert sum(expected.values()) >= ACCOUNTS
    assert _gauge_states(harness) == expected
    fund_events = out.decoded("insurance-fund")
    SHOTS.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{harness.web_ports[0]}/console"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1500})
        page.goto(url)
        # no token yet: the page says so, and shows no figure
        page.wait_for_selector("#alert:not([hidden])")
        assert "token" in page.locator("#alert").inner_text()
        assert page.locator("#count-HEALTHY").inner_text() == "–"
        page.fill("#token", TOKEN)
        page.click("#token-form button[type=submit]")

        # the whole deployment: both workers, every partition, the states the topic says
        assert _eventually(lambda: _page_states(page) == expected), (_page_states(page), expected)
        workers = page.locator("#workers").inner_text()
        assert all(f"127.0.0.1:{port}" in workers for port in harness.web_ports), workers
        assert page.locator("#marks tbody tr").count() >= 3
        assert set(page.locator("#marks td .badge").all_inner_texts()) <= {"LIVE", "STALE"}
        if fund_events:
            balance = f"{fund_events[-1].balance_after:,.2f}"  # type: ignore[attr-defined]
            assert _eventually(lambda: balance in page.locator("#fund-balance").inner_text())
            assert page.locator("#fund-events tbody tr").count() > 0
        adl = out.decoded("adl")
        shown = page.locator("#count-adl").inner_text()
        assert shown == str(len({o.adl_id for o in adl})), (shown, len(adl))  # type: ignore[attr-defined]
        page.wait_for_timeout(2500)  # one more poll: the history chart has a line to draw
        assert page.locator("#chart-main polyline").count() == 2
        page.screenshot(path=str(SHOTS / "console.png"), full_page=True)

        # an account from the closest-to-liquidation list: its view, from whichever worker owns it
        row = page.locator("#closest tbody tr").first
        account = row.get_attribute("data-account")
        assert account
        row.click()
        field = page.locator("#account-view [data-field=account] td").first
        field.wait_for()
        assert field.inner_text() == account
        assert page.locator("#account-view [data-field=state] .badge").count() == 1
        assert page.locator("#account-view [data-field=mm]").count() == 1
        page.locator("#account-panel").screenshot(path=str(SHOTS / "account.png"))

        # a what-if (POST /accounts/{id}/what-if, routed to the owner): the change, after, before
        page.fill("#fills .fill [name=instrument]", "BTC-PERPETUAL")
        page.fill("#fills .fill [name=qty]", "-0.1")
        page.fill("#fills .fill [name=price]", "70000")
        page.fill("[name=move-und]", "BTC")
        page.fill("[name=move-pct]", "-10")
        page.click("#whatif-submit")
        page.wait_for_selector("#whatif-error:not([hidden]), #whatif-result h3")
        assert page.locator("#whatif-error").is_hidden(), page.locator("#whatif-error").inner_text()
        assert page.locator("#whatif-result h3").all_inner_texts() == ["change", "after", "before"]
        assert page.locator("#whatif-result [data-field=im]").count() >= 3
        page.locator("#account-panel").screenshot(path=str(SHOTS / "what-if.png"))
        browser.close()
