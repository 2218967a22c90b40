"""Stream processing: event-time windows, watermarks, de-duplication and anomaly detectors.

    >>> import headwater.stream as hs
    >>> hs.Tumbling(60_000).size_ms
    60000
"""

from __future__ import annotations

from headwater.core import lazy_exports

# public name -> module that defines it; loaded on first use so `import headwater` stays cheap
_EXPORTS = {
    "Tumbling": "headwater.stream._windows",
    "Hopping": "headwater.stream._windows",
    "Session": "headwater.stream._windows",
    "Window": "headwater.stream._windows",
    "WindowOperator": "headwater.stream._windows",
    "WindowOutput": "headwater.stream._windows",
    "RESULT_COLUMNS": "headwater.stream._windows",
    "Deduplicator": "headwater.stream._dedupe",
    "ANOMALY_COLUMNS": "headwater.stream._detectors",
    "DETECTORS": "headwater.stream._detectors",
    "Detector": "headwater.stream._detectors",
    "Ewma": "headwater.stream._detectors",
    "Jump": "headwater.stream._detectors",
    "MedianDeviation": "headwater.stream._detectors",
    "RateOfChange": "headwater.stream._detectors",
    "Silence": "headwater.stream._detectors",
    "Stuck": "headwater.stream._detectors",
    "Threshold": "headwater.stream._detectors",
    "ZScore": "headwater.stream._detectors",
    "AlertTracker": "headwater.stream._alerts",
    "Processor": "headwater.stream._processor",
    "ProcessorResult": "headwater.stream._processor",
    "Committed": "headwater.stream._processor",
    "decode_json": "headwater.stream._decode",
    "ProcessorStatus": "headwater.stream._run",
    "member_partitions": "headwater.stream._run",
    "processor_status": "headwater.stream._run",
    "run_processor": "headwater.stream._run",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
