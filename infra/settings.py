"""Service settings: one pydantic-settings model from SPMA_* environment variables and a TOML file.

Precedence (highest first): keyword arguments, environment variables, the TOML file named by
SPMA_CONFIG (or ``spma.toml`` in the working directory), then the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from schemas import SCHEMAS_DIR

if TYPE_CHECKING:  # Faust is imported only when a worker asks for its credentials
    from faust.auth import SASLCredentials, SSLCredentials

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER"]
KafkaConfig = dict[str, str | int | float | bool]
"""A librdkafka configuration, as confluent-kafka's clients take it."""


MIN_SECRET_BYTES = 16
"""The shortest proof-of-liabilities secret accepted (128 bits)."""


def hex_secret(text: str) -> bytes:
    """The bytes of a hex secret, whitespace ignored (one pasted over several lines); a
    ValueError when the text is not hex."""
    return bytes.fromhex("".join(text.split()))


def config_file() -> Path:
    """The TOML settings file: SPMA_CONFIG if set (and not empty), else spma.toml in the working
    directory."""
    return Path(os.environ.get("SPMA_CONFIG") or "spma.toml")


class Settings(BaseSettings):
    """What a worker, a tool or a test needs to reach the broker, the registry and its store."""

    model_config = SettingsConfigDict(env_prefix="SPMA_", extra="forbid", frozen=True)

    bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated host:port"
    )
    schema_registry_url: str | None = Field(
        None, description="Confluent Schema Registry URL; unset = ids from the schemas folder"
    )
    schemas_dir: Path = Field(SCHEMAS_DIR, description="folder of .avsc files (folder registry)")
    schema_versions: dict[str, int] = Field(
        default_factory=dict,
        description='schema version to read and write per record (file stem), e.g. {"fill": 1}: '
        "a worker that keeps an older reader during a rolling upgrade; unset: the newest",
    )
    topic_prefix: str = Field("spma.", description="prefix of every topic name")
    partitions: int = Field(8, ge=1, le=4096, description="partitions of the keyed topics")
    replication_factor: int = Field(
        1, ge=1, description="replication of created topics and of the workers' changelogs"
    )
    min_insync_replicas: int | None = Field(
        None,
        ge=1,
        description="min.insync.replicas of created topics and changelogs (with acks=all, a "
        "write needs this many replicas); unset: the broker's default",
    )
    producer_idempotence: bool = Field(
        True,
        description="the workers' producer is idempotent (acks=all, no duplicates on retry); "
        "the embedded Tansu rejects aiokafka's idempotent producer, so turn it off there",
    )
    changelog_config: dict[str, str] = Field(
        default_factory=dict,
        description="more topic configuration for the changelogs the workers create (they are "
        'compacted), e.g. {"segment.ms": "600000", "min.cleanable.dirty.ratio": "0.1"}',
    )
    # Broker security, passed through to confluent-kafka and to Faust (aiokafka).
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: Path | None = None
    ssl_certificate_location: Path | None = None
    ssl_key_location: Path | None = None
    ssl_key_password: SecretStr | None = None
    # Worker.
    app_id: str = Field("spma", description="Faust app id (the consumer group)")
    generation: int = Field(
        0,
        ge=0,
        description="the account layout a worker runs (streams/scaling/): set by `spma worker` "
        "from the generations topic, not by hand",
    )
    account_partitions: int = Field(
        0,
        ge=0,
        le=4096,
        description="account partitions of the generation a worker runs; 0: `partitions` "
        "(generation 0 reads the keyed input topics directly)",
    )
    legacy_changelog_names: bool = Field(
        False,
        description="name the tables' changelogs as Faust does, {app_id}-{table}-changelog, "
        "outside the topic prefix (deployments from before the prefix was applied to them); "
        "unset: {topic_prefix}{app_id}-{table}-changelog",
    )
    store_url: str = Field("memory://", description="table store: memory:// or rocksdb://")
    table_standby_replicas: int = Field(0, ge=0)
    web_port: int = Field(6066, ge=1, le=65535, description="metrics and per-account view")
    web_host: str = Field(
        "127.0.0.1", description="address the web server binds (metrics, health, account view)"
    )
    web_token: SecretStr | None = Field(
        None,
        description="bearer token every web endpoint but /health, /ready and /metrics requires; "
        "required when web_host is not a loopback address",
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="worker log lines: text, or one JSON object a line"
    )
    data_dir: Path = Field(Path(".spma-data"), description="worker state (RocksDB) folder")
    # RocksDB keeps one database per table partition; its defaults (a 2 GiB block cache and
    # 3 x 64 MiB write buffers each) would exhaust a worker holding many partitions.
    recovery_consistency_check: bool = Field(
        True,
        description="refuse to start when a RocksDB partition's persisted changelog offset is "
        "past the broker's reported end (a wiped topic); the embedded Tansu can report less "
        "than the real end, so turn it off there",
    )
    rocksdb_block_cache_mb: int = Field(
        16, ge=1, le=4096, description="RocksDB block cache per table partition (MiB)"
    )
    rocksdb_write_buffer_mb: int = Field(
        8, ge=1, le=1024, description="RocksDB write buffer per table partition (MiB)"
    )
    rocksdb_write_buffers: int = Field(
        2, ge=1, le=8, description="RocksDB write buffers per table partition"
    )
    rocksdb_max_open_files: int = Field(
        256, ge=16, description="RocksDB open files per table partition"
    )
    fetch_max_wait_ms: int = Field(
        20,
        ge=1,
        le=1500,
        description="longest a worker's fetch waits for records (Faust fixes 1,500 ms; a broker "
        "that holds a fetch that long when records arrive, as the embedded one does, adds it to "
        "every input's latency)",
    )
    account_batch_max: int = Field(
        500,
        ge=1,
        le=100_000,
        description="most account inputs a worker handles as one batch (one table write per "
        "changed record, one hand-over of outputs to the producer)",
    )
    account_batch_within_ms: float = Field(
        5.0,
        gt=0.0,
        le=1000.0,
        description="longest the account agent waits to fill a batch (it adds up to this to an "
        "input's latency when inputs are sparse)",
    )
    commit_interval_s: float = Field(
        2.8,
        gt=0.0,
        le=60.0,
        description="how often the worker commits the offsets of the inputs it has handled "
        "(Faust's broker_commit_interval); the demo, whose steps wait for the commit, lowers it",
    )
    stall_after_s: float = Field(
        30.0,
        gt=0.0,
        le=3600.0,
        description="how long an account input partition may have records waiting with none "
        "handled before the worker reports it stalled (a warning and spma_partition_stalled)",
    )
    loop_blocked_after_s: float = Field(
        10.0,
        gt=0.0,
        le=3600.0,
        description="how long a worker's event loop may go without running before its watchdog "
        "logs it blocked, once, with every thread's stack (and once more when it runs again)",
    )
    fund_takeover_quiet_s: float = Field(
        5.0,
        gt=0.0,
        le=600.0,
        description="how long the claims topic must be quiet before the fund hands a position "
        "no ADL candidate covered to the book (longer than an account batch can take, whose "
        "partitions' candidates arrive at its end)",
    )
    params_file: Path | None = Field(None, description="initial risk parameters (JSON or TOML)")
    pol_secret: SecretStr | None = Field(
        None, description="proof-of-liabilities secret (hex); unset: no roots are published"
    )
    proof_epochs_kept: int = Field(
        168,
        ge=1,
        le=100_000,
        description="proof epochs whose leaves each partition keeps, so that `spma prove "
        "--epoch N` works for them (168: a week of hourly epochs)",
    )

    def table_options(self) -> dict[str, int] | None:
        """Store options for every table: RocksDB's sizes, explicit and small (None for the
        memory store)."""
        if not self.store_url.startswith("rocksdb"):
            return None
        mib = 1024 * 1024
        return {
            "block_cache_size": self.rocksdb_block_cache_mb * mib,
            "write_buffer_size": self.rocksdb_write_buffer_mb * mib,
            "max_write_buffer_number": self.rocksdb_write_buffers,
            "target_file_size_base": self.rocksdb_write_buffer_mb * mib,
            "max_open_files": self.rocksdb_max_open_files,
        }

    @field_validator("pol_secret")
    @classmethod
    def _secret_is_hex(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        try:
            raw = hex_secret(value.get_secret_value())
        except ValueError:
            raise ValueError("want hex") from None
        if len(raw) < MIN_SECRET_BYTES:
            raise ValueError(f"want at least {MIN_SECRET_BYTES} bytes")
        return value

    def pol_secret_bytes(self) -> bytes | None:
        """The proof-of-liabilities secret as bytes; None when unset (no roots are published)."""
        if self.pol_secret is None:
            return None
        try:
            return hex_secret(self.pol_secret.get_secret_value())
        except ValueError:  # only a copy made without validation can get here
            raise ValueError(
                "SPMA_POL_SECRET: the proof-of-liabilities secret must be hex"
            ) from None

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers_given(cls, value: str) -> str:
        hosts = [h.strip() for h in value.split(",") if h.strip()]
        if not hosts or any(":" not in h for h in hosts):
            raise ValueError("want host:port[,host:port...]")
        return ",".join(hosts)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then SPMA_* variables, then the TOML file."""
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file())
        return (init_settings, env_settings, toml)

    def changelog_topic_config(self) -> dict[str, str]:
        """Topic configuration of the changelogs the workers create: min ISR, then
        changelog_config."""
        config: dict[str, str] = {}
        if self.min_insync_replicas is not None:
            config["min.insync.replicas"] = str(self.min_insync_replicas)
        config.update(self.changelog_config)
        return config

    def changelog_topic(self, table: str) -> str:
        """The full name of a worker table's changelog ('portfolios' ->
        'spma.spma-portfolios-changelog'): under the topic prefix, like every other topic, so
        that one prefix holds (and one ACL covers) all of a deployment's topics; Faust's own
        name without it when legacy_changelog_names is set."""
        name = f"{self.app_id}-{table}-changelog"
        return name if self.legacy_changelog_names else self.topic(name)

    def topic(self, name: str) -> str:
        """The full topic name of a logical topic ('fills' -> 'spma.fills')."""
        return f"{self.topic_prefix}{name}"

    def account_topic(self, name: str) -> str:
        """The full name of an account agent's input in the generation the settings run:
        generation 0 reads the topic itself ('spma.fills'), a later one its own internal copy
        ('spma.g1.fills', streams/scaling/)."""
        if self.generation == 0:
            return self.topic(name)
        return self.topic(f"g{self.generation}.{name}")

    def logical_topic(self, full: str) -> str:
        """The logical name of a full topic name, any generation's ('spma.g1.fills' ->
        'fills')."""
        rest = full.removeprefix(self.topic_prefix)
        tag, dot, name = rest.partition(".")
        if dot and tag[:1] == "g" and tag[1:].isdigit():
            return name
        return rest

    @property
    def layout_partitions(self) -> int:
        """Account partitions of the generation the settings run."""
        return self.account_partitions or self.partitions

    def portfolios_changelog(self) -> str:
        """The portfolio table's changelog of the generation the settings run (generation 0:
        ``changelog_topic('portfolios')``)."""
        if self.generation == 0:
            return self.changelog_topic("portfolios")
        return self.topic(f"{self.app_id}-g{self.generation}-portfolios-changelog")

    def generations_topic(self) -> str:
        """The control topic of the account layouts (streams/scaling/control.py)."""
        return self.topic(f"{self.app_id}-generations")

    def for_generation(self, generation: int, partitions: int) -> Settings:
        """The settings of a worker running a generation: its account partitions, and a data
        folder of its own from generation 1 on (a partition number names other accounts)."""
        data_dir = self.data_dir if generation == 0 else self.data_dir / f"g{generation}"
        update = {"generation": generation, "account_partitions": partitions, "data_dir": data_dir}
        return self.model_copy(update=update)

    def kafka_client_config(self) -> KafkaConfig:
        """confluent-kafka (librdkafka) configuration: servers and security."""
        conf: KafkaConfig = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        optional = {
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": self.sasl_password.get_secret_value() if self.sasl_password else None,
            "ssl.ca.location": self.ssl_ca_location,
            "ssl.certificate.location": self.ssl_certificate_location,
            "ssl.key.location": self.ssl_key_location,
            "ssl.key.password": (
                self.ssl_key_password.get_secret_value() if self.ssl_key_password else None
            ),
        }
        conf.update({k: str(v) for k, v in optional.items() if v is not None})
        return conf

    def faust_broker_url(self) -> str:
        """Faust broker URL(s) for the aiokafka driver."""
        return ";".join(f"kafka://{h}" for h in self.bootstrap_servers.split(","))

    def faust_credentials(self) -> SASLCredentials | SSLCredentials | None:
        """Faust credentials object for the configured security, or None for PLAINTEXT."""
        import ssl

        import faust

        context = None
        if self.security_protocol in ("SSL", "SASL_SSL"):
            context = ssl.create_default_context(
                cafile=str(self.ssl_ca_location) if self.ssl_ca_location else None
            )
            if self.ssl_certificate_location:
                context.load_cert_chain(
                    str(self.ssl_certificate_location),
                    str(self.ssl_key_location) if self.ssl_key_location else None,
                    self.ssl_key_password.get_secret_value() if self.ssl_key_password else None,
                )
        if self.security_protocol.startswith("SASL"):
            password = self.sasl_password.get_secret_value() if self.sasl_password else ""
            mechanism = self.sasl_mechanism or "PLAIN"
            if mechanism.startswith("SCRAM"):
                return faust.SASLCredentials(
                    username=self.sasl_username,
                    password=password,
                    mechanism=mechanism,
                    ssl_context=context,
                )
            return faust.SASLCredentials(
                username=self.sasl_username, password=password, ssl_context=context
            )
        if context is not None:
            return faust.SSLCredentials(context)
        return None
