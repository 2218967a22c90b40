"""headwater: from where your data lives to a model that answers in production.

The top level stays cheap to import: heavy parts (DuckDB, Polars, scikit-learn, MLflow)
load where they are used.

    >>> import headwater
    >>> headwater.__version__
    '0.1.0'
"""

from headwater._version import __version__
from headwater.core import HeadwaterError

__all__ = ["HeadwaterError", "__version__"]
