"""One way to get a broker from headwater.yaml: ``open_broker(spec, root)``."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from headwater.brokers._base import Broker, BrokerError

if TYPE_CHECKING:
    from headwater.config import BrokerSpec

#: broker kind -> the private module that implements it (each exposes ``from_spec``).
_MODULES = {
    "embedded": "headwater.brokers._embedded",
    "nats": "headwater.brokers._nats",
    "kafka": "headwater.brokers._kafka",
    "kinesis": "headwater.brokers._kinesis",
}


def open_broker(spec: BrokerSpec, root: str | Path = ".") -> Broker:
    """The broker ``spec`` describes (``brokers:`` entry of headwater.yaml); relative paths
    resolve against ``root``, the project folder. Nothing connects until first use.

    >>> import tempfile
    >>> from headwater.config import EmbeddedBrokerSpec
    >>> open_broker(EmbeddedBrokerSpec(), tempfile.mkdtemp()).kind
    'embedded'
    """
    module_name = _MODULES.get(spec.kind)
    if module_name is None:
        raise BrokerError(f"unknown broker kind '{spec.kind}'",
                          hint=f"use one of {', '.join(_MODULES)}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise  # a missing client library: the module's own require() names the extra
        raise BrokerError(f"the {spec.kind} broker is not part of this headwater build",
                          hint="upgrade headwater, or use kind: embedded") from None
    return module.from_spec(spec, Path(root))
