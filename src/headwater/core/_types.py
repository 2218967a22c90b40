"""Type aliases shared across packages (one of each, so that callbacks agree everywhere)."""

from __future__ import annotations

from collections.abc import Callable

#: A progress callback: ``progress(what, done, total)``, called as work completes. ``what`` names
#: the piece just done (a file, an algorithm, a fold); ``done`` and ``total`` count in one unit
#: (rows, bytes, fits). Ingestion, training and cross-validation all take one.
Progress = Callable[[str, int, int], None]
