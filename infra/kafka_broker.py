"""Apache Kafka from Maven Central, run by the project: one or more KRaft nodes on loopback.

The jars come from the small Maven project in infra/kafka/pom.xml (one pinned Apache Kafka 4.x
release and a Log4j 2 backend), copied on first use into a git-ignored cache folder. Each node is
a combined broker and controller with its own storage, formatted for KRaft before its first start,
on free loopback ports and with a small heap. A cluster of n nodes shares one cluster id and a
static controller quorum of all n. Nodes can be killed with SIGKILL and restarted on the same
storage and ports, which is what the fault tests need.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from confluent_kafka.admin import AdminClient

from infra.broker import BrokerError, BrokerProcess, free_port, wait_for_metadata

POM = Path(__file__).resolve().parent / "kafka" / "pom.xml"
JAVA_MAJOR = 17
MAIN = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
_LOG4J = """\
rootLogger.level={level}
rootLogger.appenderRef.out.ref=OUT
appender.out.type=Console
appender.out.name=OUT
appender.out.layout.type=PatternLayout
appender.out.layout.pattern=[%d] %p %m (%c)%n
"""


def kafka_version(pom: Path = POM) -> str:
    """The Apache Kafka release the Maven project pins (its kafka.version property)."""
    found = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom.read_text())
    if found is None:
        raise BrokerError(f"{pom} names no <kafka.version>")
    return found.group(1).strip()


def java_major(java: str = "java") -> int | None:
    """The major version of the java on PATH (or given), None when there is none."""
    path = shutil.which(java)
    if path is None:
        return None
    try:
        out = subprocess.run(
            [path, "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if found is None:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major


def missing_tools() -> str | None:
    """Why Apache Kafka cannot run here (Java 17 or newer and Maven needed), None when it can."""
    major = java_major()
    if major is None:
        return "Apache Kafka needs Java 17 or newer: no `java` on PATH (install openjdk-17-jre)"
    if major < JAVA_MAJOR:
        return f"Apache Kafka needs Java 17 or newer; the `java` on PATH is {major}"
    if shutil.which("mvn") is None and not _cached_jars().is_dir():
        return "Apache Kafka's jars come from Maven Central: no `mvn` on PATH (install maven)"
    return None


def cache_root() -> Path:
    """Where jars are cached: SPMA_KAFKA_CACHE, else .cache/ at the checkout's root (ignored by
    git), else the user's cache folder when the package is installed read-only."""
    given = os.environ.get("SPMA_KAFKA_CACHE")
    if given:
        return Path(given)
    checkout = POM.parents[2]
    if (checkout / "pyproject.toml").is_file() and os.access(checkout, os.W_OK):
        return checkout / ".cache" / "kafka"
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "spma" / "kafka"


def _cached_jars() -> Path:
    """The jar folder of the pinned release."""
    return cache_root() / kafka_version() / "jars"


def kafka_jars(timeout_s: float = 600.0) -> Path:
    """The folder of the pinned release's runtime jars, copied from Maven Central on first use
    (under a file lock, into a temporary folder renamed when complete)."""
    jars = _cached_jars()
    if (jars / ".complete").exists():
        return jars
    why = missing_tools()
    if why:
        raise BrokerError(why)
    jars.parent.mkdir(parents=True, exist_ok=True)
    with _locked(jars.parent / ".lock"):
        if (jars / ".complete").exists():
            return jars
        staging = Path(tempfile.mkdtemp(prefix="jars-", dir=jars.parent))
        command = [
            shutil.which("mvn") or "mvn",
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise BrokerError(f"Maven did not fetch Kafka's jars in {timeout_s:g} s") from exc
        if done.returncode != 0 or not list(staging.glob("kafka_2.13-*.jar")):
            shutil.rmtree(staging, ignore_errors=True)
            tail = (done.stdout + done.stderr).strip().splitlines()[-8:]
            raise BrokerError(f"Maven could not fetch Kafka's jars: {' | '.join(tail)}")
        (staging / ".complete").write_text(kafka_version() + "\n")
        shutil.rmtree(jars, ignore_errors=True)
        staging.rename(jars)
    return jars


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on a file, for the first copy of the jars."""
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class KafkaNode:
    """One combined broker and controller: its id, ports, storage and process."""

    node_id: int
    port: int
    controller_port: int
    root: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def bootstrap(self) -> str:
        """host:port of its client listener."""
        return f"127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        """Its log directory (partitions and the metadata log)."""
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        """Where its stdout and stderr go."""
        return self.root / "server.log"

    @property
    def alive(self) -> bool:
        """True while its process runs."""
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 12) -> str:
        """The end of its log, for error messages."""
        if not self.log_file.exists():
            return "(no log)"
        text = self.log_file.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:]) or "(empty log)"


@dataclass
class KafkaCluster(BrokerProcess):
    """n Apache Kafka nodes in KRaft mode on loopback; a context manager that always stops them.

    ``port`` fixes the first node's client port (default: a free one); ``replication`` (default:
    min(n, 3)) sets the internal topics' replication and the default
    for new topics; ``broker_config`` adds or overrides server properties on every node."""

    nodes_count: int = 1
    port: int | None = None
    heap_mb: int = 512
    replication: int | None = None
    broker_config: dict[str, str] = field(default_factory=dict)
    root: Path | None = None
    log_level: str = "WARN"
    nodes: list[KafkaNode] = field(default_factory=list, init=False)
    cluster_id: str = field(default="", init=False)
    _owned_root: bool = field(default=False, init=False)

    @property
    def bootstrap(self) -> str:
        """Every node's client listener, comma-separated."""
        return ",".join(n.bootstrap for n in self.nodes)

    engine = "kafka"

    @property
    def version(self) -> str:
        """The Apache Kafka release it runs."""
        return kafka_version()

    def start(self, timeout_s: float = 120.0) -> Self:
        """Fetch the jars if needed, format every node's storage, start them, wait until every
        node is registered and answers metadata; on failure stop all and raise BrokerError."""
        if self.nodes:
            return self
        jars = kafka_jars()
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="spma-kafka-"))
            self._owned_root = True
        self.cluster_id = random_cluster_id()
        self.nodes = [
            KafkaNode(
                i + 1,
                self.port if i == 0 and self.port else free_port(),
                free_port(),
                self.root / f"node-{i + 1}",
            )
            for i in range(self.nodes_count)
        ]
        try:
            self._format(jars)
            for node in self.nodes:
                self._launch(node, jars)
            self.wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _properties(self, node: KafkaNode) -> dict[str, str]:
        """The server properties of one node."""
        rf = str(self.replication or min(self.nodes_count, 3))
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        props = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{node.port},"
            f"CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(node.data_dir),
            "offsets.topic.replication.factor": rf,
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": "1",
            "default.replication.factor": rf,
            "num.partitions": "1",
            # Tests and tools start many short-lived groups: no delay before the first join.
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            # Compaction is checked in the tests: the cleaner looks often.
            "log.cleaner.backoff.ms": "1000",
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": "1",
        }
        props.update(self.broker_config)
        return props

    def _format(self, jars: Path) -> None:
        """Write every node's configuration and format its storage for KRaft with the cluster's
        id (the nodes in parallel: each format is a JVM start)."""
        running: list[tuple[KafkaNode, subprocess.Popen[str]]] = []
        for node in self.nodes:
            node.root.mkdir(parents=True, exist_ok=True)
            text = "".join(f"{k}={v}\n" for k, v in self._properties(node).items())
            (node.root / "server.properties").write_text(text)
            (node.root / "log4j2.properties").write_text(_LOG4J.format(level=self.log_level))
            command = [
                *self._java(node, jars, heap_mb=128),
                STORAGE_TOOL,
                "format",
                "--cluster-id",
                self.cluster_id,
                "--config",
                str(node.root / "server.properties"),
                "--ignore-formatted",
            ]
            out = subprocess.PIPE
            running.append((node, subprocess.Popen(command, stdout=out, stderr=out, text=True)))
        for node, proc in running:
            try:
                stdout, stderr = proc.communicate(timeout=120)
            except subprocess.TimeoutExpired as exc:
                proc.kill()
                raise BrokerError(f"formatting Kafka node {node.node_id} took over 120 s") from exc
            if proc.returncode != 0:
                tail = (stdout + stderr).strip().splitlines()[-6:]
                raise BrokerError(
                    f"formatting Kafka node {node.node_id} failed: {' | '.join(tail)}"
                )

    def _java(self, node: KafkaNode, jars: Path, heap_mb: int) -> list[str]:
        """The JVM command line up to the main class."""
        return [
            shutil.which("java") or "java",
            f"-Xms{min(heap_mb, 256)}m",
            f"-Xmx{heap_mb}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={node.root / 'log4j2.properties'}",
            "-cp",
            f"{jars}/*",
        ]

    def _launch(self, node: KafkaNode, jars: Path) -> None:
        """Start a node's process (its log appended to server.log)."""
        command = [
            *self._java(node, jars, self.heap_mb),
            MAIN,
            str(node.root / "server.properties"),
        ]
        with node.log_file.open("ab") as log:
            try:
                node.process = subprocess.Popen(
                    command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            except OSError as exc:
                raise BrokerError(f"cannot run java: {exc}") from exc
        node.starts += 1

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Block until every live node answers metadata and the cluster lists them all."""
        deadline = time.monotonic() + timeout_s
        want = {n.node_id for n in self.nodes if n.alive}
        last = ""
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.process is not None and not node.alive:
                    raise BrokerError(
                        f"Kafka node {node.node_id} exited with code "
                        f"{node.process.returncode}: {node.log_tail()}"
                    )
            try:
                seen = self.registered_brokers(timeout_s=2.0)
                if want <= seen:
                    return
                last = f"registered {sorted(seen)} of {sorted(want)}"
            except BrokerError as exc:
                last = str(exc)
            time.sleep(0.3)
        tails = "; ".join(f"node {n.node_id}: {n.log_tail(5)}" for n in self.nodes)
        raise BrokerError(
            f"Kafka on {self.bootstrap} not ready in {timeout_s:g} s ({last}); {tails}"
        )

    def registered_brokers(self, timeout_s: float = 5.0) -> set[int]:
        """Ids of the brokers the cluster's metadata lists now."""
        live = ",".join(n.bootstrap for n in self.nodes if n.alive) or self.bootstrap
        wait_for_metadata(live, timeout_s=timeout_s)
        admin = AdminClient({"bootstrap.servers": live, "log_level": 0})
        return set(admin.list_topics(timeout=timeout_s).brokers)

    # ----- faults ------------------------------------------------------------------------------

    def node(self, node_id: int) -> KafkaNode:
        """The node with that id."""
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise KeyError(node_id)

    def kill(self, node_id: int) -> None:
        """SIGKILL a node: no controlled shutdown, nothing flushed."""
        node = self.node(node_id)
        if node.process is not None and node.alive:
            node.process.send_signal(signal.SIGKILL)
            node.process.wait(timeout=30)

    def restart(self, node_id: int, timeout_s: float = 120.0) -> None:
        """Start a stopped node again on its own storage and ports; wait until it is listed."""
        node = self.node(node_id)
        if node.alive:
            return
        self._launch(node, kafka_jars())
        self.wait_ready(timeout_s)

    def active_controller(self) -> int | None:
        """The quorum leader's id as the live nodes' quorum-state files record it (the newest
        epoch wins), None while no leader is known."""
        best: tuple[int, int] | None = None
        for node in self.nodes:
            state = node.data_dir / "__cluster_metadata-0" / "quorum-state"
            if not node.alive or not state.exists():
                continue
            try:
                data = json.loads(state.read_text())
            except (OSError, ValueError):
                continue
            leader, epoch = int(data.get("leaderId", -1)), int(data.get("leaderEpoch", -1))
            if leader >= 0 and (best is None or epoch > best[1]):
                best = (leader, epoch)
        return best[0] if best else None

    def leader_counts(self, topics: list[str] | None = None) -> dict[int, int]:
        """How many partitions (of the given topics, else all) each node leads now."""
        live = ",".join(n.bootstrap for n in self.nodes if n.alive)
        admin = AdminClient({"bootstrap.servers": live, "log_level": 0})
        meta = admin.list_topics(timeout=10.0).topics
        counts = {n.node_id: 0 for n in self.nodes}
        for name, topic in meta.items():
            if topics is not None and name not in topics:
                continue
            for part in topic.partitions.values():
                if part.leader in counts:
                    counts[part.leader] += 1
        return counts

    # ----- stop --------------------------------------------------------------------------------

    def stop(self, timeout_s: float = 20.0) -> None:
        """Stop every node (SIGTERM, SIGKILL after timeout_s) and remove storage it created."""
        for node in self.nodes:
            if node.alive and node.process is not None:
                node.process.terminate()
        deadline = time.monotonic() + timeout_s
        for node in self.nodes:
            if node.process is None:
                continue
            try:
                node.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(timeout=10)
        self.nodes = []
        if self._owned_root and self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    @property
    def running(self) -> bool:
        """True while every node runs."""
        return bool(self.nodes) and all(n.alive for n in self.nodes)

    def wait(self) -> int:
        """Block until the first node exits (foreground mode); its exit code."""
        while True:
            for node in self.nodes:
                if node.process is not None and node.process.poll() is not None:
                    return node.process.returncode
            time.sleep(0.5)


def random_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding, never starting with
    '-' (as Kafka's own Uuid.randomUuid: the storage tool would read it as an option)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text
