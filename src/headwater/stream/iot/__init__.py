"""The IoT side: simulated devices and gateways, and scoring detectors on injected faults."""

from headwater.stream.iot._score import FINDS, score
from headwater.stream.iot._simulate import FAULTS, METRICS, Simulation, simulate

__all__ = ["FAULTS", "FINDS", "METRICS", "Simulation", "score", "simulate"]
