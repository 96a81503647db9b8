"""Broker settings by URL (pure), and the settings refusing a heartbeat that could let a live lease lapse."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from paas_site.brokers import celery_broker_settings, is_rabbitmq, task_queue

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("url", ["amqp://guest:guest@127.0.0.1:5672/x", "amqps://h/v", "pyamqp://h//"])
def test_rabbitmq_gets_quorum_queues_topic_exchanges_and_publisher_confirms(url):
    assert is_rabbitmq(url)
    conf = celery_broker_settings(url)
    assert conf["broker_transport_options"] == {"confirm_publish": True}
    assert (conf["task_default_queue_type"], conf["task_create_missing_queue_type"]) == ("quorum", "quorum")
    assert (conf["task_default_exchange_type"], conf["task_create_missing_queue_exchange_type"]) == ("topic", "topic")
    queue = task_queue("steps", url)
    assert queue.queue_arguments == {"x-queue-type": "quorum"} and queue.exchange.type == "topic"


def test_redis_keeps_its_visibility_timeout_and_classic_queues():
    url = "redis://127.0.0.1:6379/0"
    assert not is_rabbitmq(url)
    assert celery_broker_settings(url) == {"broker_transport_options": {"visibility_timeout": 3600}}
    assert task_queue("steps", url).queue_arguments is None


@pytest.mark.parametrize("lease, heartbeat", [("15", "8"), ("15", "0"), ("2", "5")])
def test_a_heartbeat_slower_than_half_the_lease_stops_the_start(lease, heartbeat):
    env = {**os.environ, "SLIPWAY_STEP_LEASE_SECONDS": lease, "SLIPWAY_STEP_HEARTBEAT_SECONDS": heartbeat}
    done = subprocess.run([sys.executable, "-c", "import paas_site.settings"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "SLIPWAY_STEP_HEARTBEAT_SECONDS must be positive and at most half of SLIPWAY_STEP_LEASE_SECONDS" \
        in done.stderr
