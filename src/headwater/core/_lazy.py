"""Packages whose public names load on first use, so importing a package stays cheap."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__``: each name in ``exports`` is imported from its
    module (named as :func:`importlib.import_module` takes it with ``package``:
    ``"headwater.ingest._run"`` or ``"._run"``) when first used, then kept in the package, so
    the next use is a plain attribute.

    Use it in a package's ``__init__.py``::

        _EXPORTS = {"ingest_files": "._run", "FileSource": ".sources"}
        __all__ = sorted(_EXPORTS)
        __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

    >>> getattr_, dir_ = lazy_exports("headwater.core", {"Batch": "._batch"})
    >>> getattr_("Batch").__name__
    'Batch'
    >>> getattr_("Nope")
    Traceback (most recent call last):
    ...
    AttributeError: module 'headwater.core' has no attribute 'Nope'
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(getattr(sys.modules[package], "__all__", exports))

    return __getattr__, __dir__
