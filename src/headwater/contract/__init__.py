"""Contracts: cleanse, type and validate Arrow batches; rule expressions, keys, quality statistics.

The contract engine is shared by batch ingestion (``headwater.ingest``) and stream processing
(``headwater.stream``), which sit on the same floor and never import each other: both use this
package, and it knows neither of them (it uses ``headwater.core`` and the contract specs of
``headwater.config``).

    >>> import headwater.contract as hc
    >>> sorted(hc.__all__)[:3]
    ['Checked', 'Checker', 'Contract']
"""

from __future__ import annotations

from headwater.core import lazy_exports

# public name -> module that defines it; loaded on first use so that importing is cheap (Polars)
_EXPORTS = {
    "Contract": "headwater.contract._contract",
    "Checker": "headwater.contract._contract",
    "Checked": "headwater.contract._contract",
    "Typed": "headwater.contract._contract",
    "INVALID_SCHEMA": "headwater.contract._contract",
    "QualityReport": "headwater.contract._quality",
    "Finding": "headwater.contract._quality",
    "infer_contract": "headwater.contract._infer",
    "dump_contract": "headwater.contract._infer",
    "compile_rule": "headwater.contract._expr",
    "ExprError": "headwater.contract._expr",
    "KeySet": "headwater.contract._keys",
    "LatestMap": "headwater.contract._keys",
    "clean_text": "headwater.contract._cleanse",
    "clock_text": "headwater.contract._cleanse",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
