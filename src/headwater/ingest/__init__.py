"""Ingestion: sources → cleanse and contract → store, with a quarantine; exactly once.

    >>> import headwater.ingest as hi
    >>> callable(hi.ingest_files)
    True
"""

from __future__ import annotations

from headwater.core import lazy_exports

# public name -> module that defines it; loaded on first use so `import headwater` stays cheap
_EXPORTS = {
    "ingest": "headwater.ingest._pipeline",
    "ExtractResult": "headwater.ingest._pipeline",
    "ConservationError": "headwater.ingest._pipeline",
    "ingest_files": "headwater.ingest._run",
    "infer_from_file": "headwater.ingest._run",
    "infer_for_pipeline": "headwater.ingest._run",
    "infer_from_source": "headwater.ingest._run",
    "run_pipeline": "headwater.ingest._run",
    "replay_quarantine": "headwater.ingest._run",
    "replay_table": "headwater.ingest._run",
    "PipelineStatus": "headwater.ingest._status",
    "pipeline_status": "headwater.ingest._status",
    "quarantine_counts": "headwater.ingest._quarantine",
    "quarantine_sample": "headwater.ingest._quarantine",
    "QuarantineSource": "headwater.ingest._quarantine",
    "Schedule": "headwater.ingest._schedule",
    "Scheduler": "headwater.ingest._schedule",
    "backfill": "headwater.ingest._schedule",
    "PipelineBusy": "headwater.ingest._locks",
    "pipeline_lock": "headwater.ingest._locks",
    "make_messy_samples": "headwater.ingest._samples",
    "FileSource": "headwater.ingest.sources",
    "build_source": "headwater.ingest.sources",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
