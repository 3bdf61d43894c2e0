"""`spma prove` and `spma verify` through typer's runner: round trip, tampering, clean errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from engine.solvency import MerkleSumTree, leaves_from_liabilities
from streams.cli.commands import prove, verify

SECRET_HEX = "5ec7e75ec7e75ec7e75ec7e75ec7e75e"
EQUITIES = {"alice": 1234.565, "bob": -50.0, "carol": 0.0, "dave": 99_999.99, "erin": 0.01}


@pytest.fixture
def app() -> typer.Typer:
    """A fresh app with just the two commands (independent of streams/cli/main.py's COMMANDS)."""
    app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    prove.register(app)
    verify.register(app)
    return app


@pytest.fixture
def runner() -> CliRunner:
    """A runner without the secret in its environment."""
    return CliRunner(env={"SPMA_POL_SECRET": None})


@pytest.fixture
def liabilities(tmp_path: Path) -> Path:
    """The liabilities file."""
    path = tmp_path / "liabilities.json"
    path.write_text(json.dumps(EQUITIES))
    return path


def expected_root() -> tuple[str, int]:
    """The root the engine builds for the book."""
    tree = MerkleSumTree.build(
        leaves_from_liabilities(EQUITIES), bytes.fromhex(SECRET_HEX), epoch=3
    )
    return tree.root_hash.hex(), tree.total_cents


def prove_to(
    app: typer.Typer, runner: CliRunner, liabilities: Path, out: Path, account: str = "alice"
) -> str:
    """Run `spma prove` writing to `out`; return the root hash it reports."""
    result = runner.invoke(
        app,
        [
            "prove",
            account,
            "--liabilities",
            str(liabilities),
            "--epoch",
            "3",
            "--secret",
            SECRET_HEX,
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    words = result.stderr.split()
    return words[words.index("root") + 1]


def test_prove_then_verify(
    app: typer.Typer, runner: CliRunner, liabilities: Path, tmp_path: Path
) -> None:
    out = tmp_path / "proof.json"
    root = prove_to(app, runner, liabilities, out)
    assert expected_root() == (root, 123_457 + 9_999_999 + 1)
    proof = json.loads(out.read_text())
    assert (proof["account"], proof["liability_cents"], proof["version"]) == ("alice", 123_457, 1)
    result = runner.invoke(app, ["verify", str(out), root])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        f"OK: account alice with liability 1234.57 USD is included in root {root}"
    )
    assert "total 101234.57 USD" in result.stdout
    for total in ("10123457", "101234.57", "101,234.57 USD"):
        ok = runner.invoke(app, ["verify", str(out), root.upper(), "--total", total])
        assert ok.exit_code == 0, ok.output


def test_prove_prints_the_proof_on_stdout_and_accepts_a_secret_file(
    app: typer.Typer, runner: CliRunner, liabilities: Path, tmp_path: Path
) -> None:
    hex_file = tmp_path / "secret.hex"
    hex_file.write_text(SECRET_HEX + "\n")
    args = ["prove", "bob", "--liabilities", str(liabilities), "--epoch", "3"]
    result = runner.invoke(app, [*args, "--secret-file", str(hex_file)])
    assert result.exit_code == 0, result.output
    proof = json.loads(result.stdout)
    assert proof["liability_cents"] == 0  # negative equity: liability 0
    assert proof["root_hash"] == expected_root()[0]
    assert "total 10123457 cents (101234.57 USD) over 5 accounts, epoch 3" in result.stderr
    via_env = CliRunner(env={"SPMA_POL_SECRET": SECRET_HEX}).invoke(app, args)
    assert via_env.exit_code == 0 and json.loads(via_env.stdout) == proof
    raw_file = tmp_path / "secret.bin"
    raw_file.write_bytes(b"\xff" * 32)
    raw = runner.invoke(app, [*args, "--secret-file", str(raw_file)])
    assert raw.exit_code == 0, raw.output
    assert json.loads(raw.stdout)["root_hash"] != proof["root_hash"]


def test_tampered_proof_fails_with_the_reason(
    app: typer.Typer, runner: CliRunner, liabilities: Path, tmp_path: Path
) -> None:
    out = tmp_path / "proof.json"
    root = prove_to(app, runner, liabilities, out, "dave")
    good = json.loads(out.read_text())
    first = good["path"][0]
    flipped = {**first, "side": "R" if first["side"] == "L" else "L"}
    tampered = [
        ({**good, "liability_cents": good["liability_cents"] + 100}, "root_mismatch"),
        ({**good, "total_cents": good["total_cents"] - 1}, "total_mismatch"),
        ({**good, "path": [{**first, "sibling_sum_cents": -1}, *good["path"][1:]]}, "negative_sum"),
        ({**good, "path": [flipped, *good["path"][1:]]}, "wrong_side"),
        ({k: v for k, v in good.items() if k != "salt"}, "malformed"),
    ]
    for data, reason in tampered:
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(data))
        result = runner.invoke(app, ["verify", str(bad), root])
        assert result.exit_code == 1, result.output
        assert result.stdout.startswith(f"FAILED ({reason}): "), result.stdout
        assert "Traceback" not in result.output
    wrong_total = runner.invoke(app, ["verify", str(out), root, "--total", "1.00"])
    assert wrong_total.exit_code == 1
    assert "total_mismatch" in wrong_total.stdout
    other_root = runner.invoke(app, ["verify", str(out), "0" * 64])
    assert other_root.exit_code == 1
    assert "root_mismatch" in other_root.stdout


def test_unreadable_inputs_exit_2(
    app: typer.Typer, runner: CliRunner, liabilities: Path, tmp_path: Path
) -> None:
    root = "ab" * 32
    missing = runner.invoke(app, ["verify", str(tmp_path / "nope.json"), root])
    assert missing.exit_code == 2
    assert "spma: error: proof file" in missing.stderr
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    assert runner.invoke(app, ["verify", str(garbage), root]).exit_code == 2
    bad_root = runner.invoke(app, ["verify", str(garbage), "xyz"])
    assert bad_root.exit_code == 2 and "64 hex digits" in bad_root.stderr
    bad_total = runner.invoke(app, ["verify", str(garbage), root, "--total", "lots"])
    assert bad_total.exit_code == 2
    base = ["prove", "alice", "--liabilities", str(liabilities), "--epoch", "3"]
    cases = {
        "is not in": [*base[:1], "mallory", *base[2:], "--secret", SECRET_HEX],
        "no epoch secret": base,
        "must be hex": [*base, "--secret", "not-hex"],
        "at least 16 bytes": [*base, "--secret", "abcd"],
        "liabilities file": [
            "prove",
            "alice",
            "--liabilities",
            str(tmp_path / "missing.json"),
            "--epoch",
            "3",
            "--secret",
            SECRET_HEX,
        ],
    }
    for message, args in cases.items():
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (message, result.output)
        assert message in result.stderr, (message, result.stderr)
        assert "Traceback" not in result.output
    not_numbers = tmp_path / "strings.json"
    not_numbers.write_text(json.dumps({"alice": "lots"}))
    result = runner.invoke(
        app,
        [
            "prove",
            "alice",
            "--liabilities",
            str(not_numbers),
            "--epoch",
            "1",
            "--secret",
            SECRET_HEX,
        ],
    )
    assert result.exit_code == 2 and "is not a number" in result.stderr
