"""``brokers:`` entries for the server brokers: settings, ${ENV} secrets, names in messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.brokers import open_broker
from headwater.config import parse_project


def test_nats_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HW_TEST_NATS_TOKEN", "s3cret")
    project = parse_project(
        "brokers:\n  bus:\n    kind: nats\n    servers: ['nats://u:pw@nats-1:4222']\n"
        "    token: ${HW_TEST_NATS_TOKEN}\n    ack_wait: 5m\n    credentials: keys/app.creds\n",
        root=tmp_path)
    broker = open_broker(project.broker("bus"), project.root)
    assert broker.kind == "nats" and broker.name == "bus"
    assert broker.token == "s3cret" and broker.ack_wait_s == 300
    assert broker.credentials == str(tmp_path.resolve() / "keys" / "app.creds")
    assert broker.describe() == "NATS broker 'bus' at nats://nats-1:4222", "no password shown"
    assert "s3cret" not in repr(project.broker("bus"))
    assert project.broker("bus").setting("servers") == "brokers.bus.servers"


def test_nats_names_are_checked(tmp_path: Path) -> None:
    from headwater.brokers import BrokerError
    from headwater.brokers._nats import NatsBroker

    with pytest.raises(BrokerError, match="cannot be a NATS stream"):
        NatsBroker().consumer("a.b", group="g")
