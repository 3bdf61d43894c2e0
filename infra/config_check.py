"""Configuration strictness: the names in the environment and in the TOML file, checked against
the settings before they load.

pydantic-settings reads only the ``SPMA_*`` variables that name a field, so a misspelled one is
lost without a word, and a malformed TOML file fails deep inside it with a long traceback. These
checks name what is wrong and the closest known name, in one line each, for the CLI to print:
an unknown variable is a warning (the environment is shared with other programs), an unknown key
in the file an error (the file is ours alone).
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

from infra.settings import Settings

PREFIX = "SPMA_"

EXTRA_VARIABLES = frozenset(
    {
        "SPMA_CONFIG",  # the TOML file (infra/settings.py)
        "SPMA_TANSU_BIN",  # the embedded broker's binary (infra/broker.py)
        "SPMA_KAFKA_CACHE",  # where Kafka's jars are cached (infra/kafka_broker.py)
        "SPMA_KAFKA_BOOTSTRAP",  # tests: a broker someone already runs (tests/conftest.py)
        "SPMA_TEST_BROKER",  # tests: kafka or tansu (tests/conftest.py)
        "SPMA_TEST_DOCKER",  # tests: 0 skips testcontainers (tests/conftest.py)
        "SPMA_TEST_DEMO_CLI",  # tests: run `spma demo` on Kafka too (tests/test_demo.py)
        "SPMA_TEST_BROWSER",  # tests: 1 fails the console's test without Chromium (.ci/run)
        "SPMA_FAULTS_LOGLEVEL",  # tests: the fault tests' workers (tests/faults/chaos.py)
        "SPMA_LOOP_ACCOUNTS",  # tests: accounts of the crash loop (tests/loop/test_crash_loop.py)
    }
)
"""SPMA_ variables that are not settings but are read elsewhere on purpose: never warned about."""


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message is one line naming the file."""


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name nearest to a misspelled one (difflib), or None when none is near."""
    found = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return found[0] if found else None


def setting_variables() -> frozenset[str]:
    """Every SPMA_ variable that names a setting."""
    return frozenset(PREFIX + name.upper() for name in Settings.model_fields)


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A warning line for each SPMA_ variable that is neither a setting nor a known extra,
    with the closest setting when one is near (variables are matched case-insensitively, as
    the settings read them)."""
    settings = setting_variables()
    known = settings | EXTRA_VARIABLES
    lines = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(PREFIX) or upper in known:
            continue
        near = closest(upper, settings)
        hint = f"; did you mean {near}?" if near else ""
        lines.append(f"{name} is not a setting{hint}")
    return lines


def read_config_file(path: Path) -> dict[str, object]:
    """The TOML file's table; ConfigError naming the file and the line and column when it is
    not valid TOML."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror or exc}") from None


def check_config_file(path: Path, named: bool) -> None:
    """ConfigError when the settings file is malformed or has a key that is not a setting (with
    the closest one), or when ``named`` (SPMA_CONFIG given) and it does not exist; a default
    file that is absent is fine."""
    if not path.exists():
        if named:
            raise ConfigError(f"config file {path} (SPMA_CONFIG) does not exist")
        return
    fields = list(Settings.model_fields)
    for key in read_config_file(path):
        if key.lower() in fields:
            continue
        near = closest(key.lower(), fields)
        hint = f"; did you mean {near!r}?" if near else ""
        raise ConfigError(f"config file {path}: unknown key {key!r}{hint}")
