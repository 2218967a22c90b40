"""The IoT side: simulated devices, MQTT, the gateway that normalises their payloads, and
scoring detectors on the injected faults."""

from headwater.stream.iot._gateway import READING_SCHEMA, UNITS, Normalised, normalise
from headwater.stream.iot._mqtt import (
    INFLIGHT,
    SESSION_EXPIRY_S,
    TOPIC_PREFIX,
    MqttBatch,
    MqttEndpoint,
    MqttError,
    MqttSubscription,
    device_topics,
    is_mqtt_url,
    parse_mqtt_url,
    publish_mqtt,
)
from headwater.stream.iot._run import (
    GatewayResult,
    publish_simulation,
    run_gateway,
    run_mqtt_gateway,
)
from headwater.stream.iot._score import FINDS, score
from headwater.stream.iot._simulate import FAULTS, METRICS, Simulation, simulate

__all__ = ["FAULTS", "FINDS", "INFLIGHT", "METRICS", "READING_SCHEMA", "SESSION_EXPIRY_S",
           "TOPIC_PREFIX", "UNITS", "GatewayResult", "MqttBatch", "MqttEndpoint", "MqttError",
           "MqttSubscription", "Normalised", "Simulation", "device_topics", "is_mqtt_url",
           "normalise", "parse_mqtt_url", "publish_mqtt", "publish_simulation", "run_gateway",
           "run_mqtt_gateway", "score", "simulate"]
