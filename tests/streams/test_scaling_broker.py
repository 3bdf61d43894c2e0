"""The generations topic on a broker: no record is generation 0; each step recorded is read back;
a scale under way refuses another count and rolls back with --abort; a dry run writes nothing."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient

from infra.settings import Settings
from streams.scaling.command import abort, plan_scale
from streams.scaling.control import Layouts, Step, Switch, ensure_topic, publish, read_layouts
from streams.scaling.errors import ScaleRefused

pytestmark = pytest.mark.broker


def test_layouts_recorded_read_back_and_rolled_back(
    kafka_bootstrap: str, unique_prefix: str
) -> None:
    settings = Settings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix, partitions=4)
    assert read_layouts(settings) == Layouts(0, {0: 4})  # no topic yet
    _, plan = plan_scale(settings, 8)
    assert plan.new.layout_partitions == 8 and plan.records == 0
    admin = AdminClient(settings.kafka_client_config())
    assert settings.generations_topic() not in admin.list_topics(timeout=10).topics  # dry
    said: list[str] = []
    with pytest.raises(ScaleRefused, match="no scale under way"):
        abort(settings, said.append)
    ensure_topic(settings)
    draining = Layouts(0, {0: 4}, Switch(1, 8, Step.PREPARED)).at(Step.DRAINING)
    publish(settings, draining)
    assert read_layouts(settings) == draining
    with pytest.raises(ScaleRefused, match="under way"):
        plan_scale(settings, 16)
    assert plan_scale(settings, 8)[1].resuming is Step.DRAINING
    assert abort(settings, said.append) == Layouts(0, {0: 4})
    assert read_layouts(settings) == Layouts(0, {0: 4})
    assert said == ["recorded: active"]
