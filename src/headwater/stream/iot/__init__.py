"""The IoT side: simulated devices, the gateway that normalises their payloads, and scoring
detectors on the injected faults."""

from headwater.stream.iot._gateway import READING_SCHEMA, UNITS, Normalised, normalise
from headwater.stream.iot._run import GatewayResult, publish_simulation, run_gateway
from headwater.stream.iot._score import FINDS, score
from headwater.stream.iot._simulate import FAULTS, METRICS, Simulation, simulate

__all__ = ["FAULTS", "FINDS", "METRICS", "READING_SCHEMA", "UNITS", "GatewayResult",
           "Normalised", "Simulation", "normalise", "publish_simulation", "run_gateway", "score",
           "simulate"]
