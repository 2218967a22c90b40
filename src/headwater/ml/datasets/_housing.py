"""A synthetic housing-price data set shaped like the California census districts.

The real set (20,640 districts of the 1990 census) cannot be downloaded here, so this generator
makes data with the same columns, ranges and quirks, and with the same kind of structure:

- districts cluster around metropolitan areas (Los Angeles, the Bay Area, San Diego, ...);
- median income drives price, and a coastal premium falls off with distance to the ocean;
- prices also follow small neighbourhood effects (a few kilometres wide) that a model can only
  learn from the coordinates and from nearby districts;
- size columns (rooms, bedrooms, population, households) are counts per district, strongly
  correlated with each other; what matters for price is their ratios (rooms per household,
  bedrooms per room, people per household);
- ``total_bedrooms`` is missing for about 1% of districts; ``housing_median_age`` is capped at
  52, ``median_income`` at 15.0001 (tens of thousands of USD) and ``median_house_value`` at
  500,001 USD, as in the census release;
- ``ocean_proximity`` is one of ``<1H OCEAN``, ``INLAND``, ``NEAR OCEAN``, ``NEAR BAY``,
  ``ISLAND``.

Everything is vectorised NumPy; 20,640 rows take a few tens of milliseconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from headwater.core import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa

#: Column order of the California census housing file.
HOUSING_COLUMNS = (
    "longitude", "latitude", "housing_median_age", "total_rooms", "total_bedrooms",
    "population", "households", "median_income", "median_house_value", "ocean_proximity",
)
#: The target column of :func:`make_housing`.
HOUSING_TARGET = "median_house_value"
#: The cap of the census release: values above are recorded as 500,001.
VALUE_CAP = 500_001.0

# metro areas: longitude, latitude, share of districts, spread (degrees), price level (log),
# income level (log), median age
_METROS = np.array([
    # lon,    lat,   share, spread, price, income, age
    [-118.25, 34.05, 0.270, 0.30, 0.30, 0.05, 32],   # Los Angeles
    [-117.35, 33.98, 0.070, 0.30, -0.05, -0.05, 18],  # Inland Empire
    [-117.85, 33.72, 0.060, 0.15, 0.40, 0.18, 24],   # Orange County
    [-117.10, 32.80, 0.075, 0.18, 0.25, 0.04, 24],   # San Diego
    [-122.25, 37.80, 0.105, 0.20, 0.55, 0.15, 38],   # Bay Area north / SF / Oakland
    [-121.95, 37.35, 0.060, 0.15, 0.60, 0.25, 28],   # South Bay / San Jose
    [-121.45, 38.58, 0.055, 0.20, -0.10, -0.02, 24],  # Sacramento
    [-121.10, 37.75, 0.045, 0.30, -0.25, -0.10, 25],  # Stockton / Modesto
    [-119.80, 36.75, 0.050, 0.35, -0.35, -0.15, 26],  # Fresno / San Joaquin valley
    [-119.05, 35.38, 0.030, 0.25, -0.40, -0.12, 26],  # Bakersfield
    [-121.85, 36.62, 0.025, 0.20, 0.35, 0.00, 26],   # Monterey / Santa Cruz
    [-119.75, 34.42, 0.025, 0.20, 0.45, 0.05, 28],   # Santa Barbara / Ventura
    [-116.40, 33.80, 0.025, 0.35, -0.15, -0.08, 16],  # Palm Springs / desert
    [-122.40, 40.60, 0.020, 0.40, -0.45, -0.20, 22],  # Redding / north valley
    [-123.10, 39.50, 0.020, 0.70, -0.20, -0.20, 22],  # north coast, rural
    [-120.40, 38.70, 0.020, 0.60, -0.25, -0.10, 18],  # Sierra foothills, rural
    [-120.60, 35.30, 0.020, 0.30, 0.15, -0.02, 22],  # San Luis Obispo
])

# the Pacific coast, north to south (longitude, latitude)
_COAST = np.array([
    [-124.20, 41.95], [-124.10, 40.80], [-124.35, 40.40], [-123.80, 39.60], [-123.70, 39.00],
    [-123.00, 38.30], [-122.50, 37.80], [-122.50, 37.50], [-122.40, 37.20], [-122.05, 36.95],
    [-121.90, 36.60], [-121.40, 36.00], [-120.90, 35.45], [-120.60, 34.90], [-120.50, 34.55],
    [-120.00, 34.45], [-119.40, 34.30], [-118.80, 34.02], [-118.45, 33.95], [-118.40, 33.75],
    [-118.10, 33.72], [-117.80, 33.55], [-117.30, 33.05], [-117.25, 32.75], [-117.12, 32.53],
])
_BAY = np.array([[-122.35, 37.80], [-122.20, 37.65], [-122.05, 37.50], [-122.45, 38.05],
                 [-122.30, 38.05]])
_ISLAND = (-118.33, 33.35)
_KM_PER_DEG = 111.0
# Calibrated so that shuffled 5-fold CV on 20,640 rows gives about what the census set gives:
# linear regression ~68k RMSE, default gradient boosting ~48k, 1,000 trees + 3 ratios ~44k.
_BASE_PRICE = 140_000.0  # log-price intercept (USD)
_SIGNAL = 0.58           # scale of the explainable part of log-price
_NOISE = 0.147           # sd of the unexplainable part of log-price
_LOCAL = 0.95            # weight of the neighbourhood field


def make_housing(n_rows: int = 20_640, *, seed: int = 0, missing_bedrooms: float = 0.01,
                 noise: float = 1.0) -> pa.Table:
    """Make a California-shaped housing table (Arrow) of ``n_rows`` districts.

    Parameters
    ----------
    n_rows:
        Number of districts; the census set has 20,640 (the default).
    seed:
        Random seed; the same seed gives the same table.
    missing_bedrooms:
        Share of districts whose ``total_bedrooms`` is null (the census set: 207 of 20,640).
    noise:
        Scale of the unexplainable part of the price (1.0 reproduces the census set's
        difficulty; 0 gives a nearly deterministic target, useful in tests).

    Raises
    ------
    ConfigError
        If ``n_rows`` is below 10 or ``missing_bedrooms`` is outside [0, 1).

    >>> t = make_housing(200, seed=1)
    >>> t.num_rows, t.column_names[-2]
    (200, 'median_house_value')
    """
    import pyarrow as pa

    if n_rows < 10:
        raise ConfigError(f"make_housing: n_rows={n_rows} is too small",
                          hint="ask for at least 10 districts")
    if not 0 <= missing_bedrooms < 1:
        raise ConfigError(f"make_housing: missing_bedrooms={missing_bedrooms} is not a share",
                          hint="use a number in [0, 1), e.g. 0.01")
    rng = np.random.default_rng(seed)
    lon, lat, metro = _locations(rng, n_rows)
    coast_km = _distance_km(lon, lat, _COAST)
    bay_km = _distance_km(lon, lat, _BAY)
    island = np.zeros(n_rows, dtype=bool)
    island[rng.choice(n_rows, size=max(1, round(n_rows * 5 / 20_640)), replace=False)] = True
    lon = np.where(island, _ISLAND[0] + rng.normal(0, 0.04, n_rows), lon)
    lat = np.where(island, _ISLAND[1] + rng.normal(0, 0.02, n_rows), lat)
    coast_km = np.where(island, 1.0, coast_km)

    local = _neighbourhoods(rng, lon, lat, n_centres=max(20, n_rows // 14))
    m = _METROS[metro]
    coastal = 0.55 * np.exp(-coast_km / 12.0) + 0.35 * np.exp(-coast_km / 60.0)

    # income: metro level + part of the neighbourhood effect + district noise (log scale)
    log_income = (np.log(3.3) + m[:, 5] + 0.45 * local + 0.12 * coastal
                  + rng.normal(0, 0.33, n_rows))
    income = np.clip(np.exp(log_income), 0.4999, 15.0001)

    age = np.clip(np.round(m[:, 6] + rng.normal(0, 12, n_rows) - 6 * local), 1, 52)

    households = np.maximum(1, np.round(np.exp(rng.normal(np.log(420), 0.65, n_rows))
                                        * np.where(age < 15, 1.5, 1.0)))
    rooms_ph = np.exp(np.log(4.6) + 0.22 * (log_income - np.log(3.3)) - 0.06 * coastal
                      + rng.normal(0, 0.16, n_rows)
                      + np.where(rng.random(n_rows) < 0.004, rng.normal(1.5, 0.6, n_rows), 0))
    bedrooms_pr = np.clip(np.exp(np.log(0.205) - 0.12 * (log_income - np.log(3.3))
                                 + rng.normal(0, 0.09, n_rows)), 0.05, 0.9)
    people_ph = np.exp(np.log(2.8) - 0.10 * (log_income - np.log(3.3)) + 0.05 * local
                       + rng.normal(0, 0.20, n_rows)
                       + np.where(rng.random(n_rows) < 0.003, rng.normal(1.8, 0.7, n_rows), 0))
    total_rooms = np.maximum(2, np.round(households * rooms_ph))
    total_bedrooms = np.maximum(1, np.round(total_rooms * bedrooms_pr))
    population = np.maximum(3, np.round(households * people_ph))

    # price (log scale): income, location, neighbourhood, age, ratios, noise
    rph = np.log(total_rooms / households)
    bpr = total_bedrooms / total_rooms
    pph = np.log(population / households)
    log_value = np.log(_BASE_PRICE) + _SIGNAL * (
        0.62 * (np.log(income) - np.log(3.3))
        + 0.07 * np.maximum(np.log(income) - np.log(6.0), 0)
        + m[:, 4] + _LOCAL * local + 0.55 * coastal
        - 0.18 * np.clip(coast_km - 60, 0, 300) / 100
        + 0.0025 * (age - 25) + 0.0035 * np.maximum(age - 40, 0) * (m[:, 4] > 0.2)
        + 0.35 * np.tanh(2.0 * (rph - np.log(4.6)))
        - 2.2 * np.clip(bpr - 0.2, -0.1, 0.4)
        - 0.45 * (pph - np.log(2.8)) - 0.2 * np.maximum(pph - np.log(4.0), 0)
        + 0.6 * island
    )
    log_value += noise * rng.normal(0, _NOISE, n_rows) * (1 + 0.3 * np.tanh(local))
    value = np.clip(np.round(np.exp(log_value), -2), 14_999, VALUE_CAP)

    proximity = np.where(coast_km < 9, "NEAR OCEAN", np.where(coast_km < 60, "<1H OCEAN", "INLAND"))
    proximity = np.where((bay_km < 18) & (coast_km < 60) & (lat > 37.3), "NEAR BAY", proximity)
    proximity = np.where(island, "ISLAND", proximity)
    bedrooms_null = rng.random(n_rows) < missing_bedrooms

    return pa.table({
        "longitude": np.round(lon, 2),
        "latitude": np.round(lat, 2),
        "housing_median_age": age,
        "total_rooms": total_rooms,
        "total_bedrooms": pa.array(total_bedrooms, mask=bedrooms_null),
        "population": population,
        "households": households,
        "median_income": np.round(income, 4),
        "median_house_value": value,
        "ocean_proximity": pa.array(proximity.astype(object), pa.string()),
    })


def _locations(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """District coordinates: clustered around metros, pushed back on land, inside the state."""
    shares = _METROS[:, 2] / _METROS[:, 2].sum()
    metro = rng.choice(len(_METROS), size=n, p=shares)
    m = _METROS[metro]
    # heavy-ish tails: most districts near the centre, some in the exurbs
    spread = m[:, 3] * np.sqrt(rng.gamma(1.5, 1 / 1.5, n))
    lon = m[:, 0] + rng.normal(0, 1, n) * spread * 1.2
    lat = m[:, 1] + rng.normal(0, 1, n) * spread
    # a point in the ocean is reflected across the coast line onto land
    coast_lon = np.interp(lat, _COAST[::-1, 1], _COAST[::-1, 0])
    lon = np.where(lon < coast_lon, 2 * coast_lon - lon + 0.01, lon)
    lat = np.clip(lat, 32.54, 41.95)
    lon = np.clip(lon, -124.35, -114.31)
    # south of the state's diagonal border with Nevada there is desert, not Nevada
    border = -120.0 + (39.0 - lat) * (120.0 - 114.6) / (39.0 - 35.0)
    lon = np.where((lat < 39.0) & (lon > border), border - rng.random(n) * 0.5, lon)
    lon = np.where((lat >= 39.0) & (lon > -120.0), -120.0 - rng.random(n) * 0.3, lon)
    return lon, lat, metro


def _distance_km(lon: np.ndarray, lat: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Distance (km) from each point to the nearest of a set of polyline vertices (densified)."""
    t = np.linspace(0, 1, 12)[:-1]
    seg = line[:-1, None, :] * (1 - t[None, :, None]) + line[1:, None, :] * t[None, :, None]
    pts = np.vstack([seg.reshape(-1, 2), line[-1:]])
    cos = np.cos(np.deg2rad(36.5))
    dx = (lon[:, None] - pts[None, :, 0]) * cos
    dy = lat[:, None] - pts[None, :, 1]
    return np.sqrt(dx * dx + dy * dy).min(axis=1) * _KM_PER_DEG


def _neighbourhoods(rng: np.random.Generator, lon: np.ndarray, lat: np.ndarray,
                    n_centres: int) -> np.ndarray:
    """A smooth random field of neighbourhood effects centred on districts (log-price units)."""
    centres = rng.choice(len(lon), size=n_centres, replace=False)
    clon, clat = lon[centres], lat[centres]
    width = rng.uniform(0.02, 0.10, n_centres)
    amp = rng.normal(0, 0.45, n_centres)
    field = np.zeros(len(lon))
    for start in range(0, n_centres, 256):  # chunks bound memory: n x 256 floats at a time
        sl = slice(start, start + 256)
        d2 = ((lon[:, None] - clon[None, sl]) * 0.8) ** 2 + (lat[:, None] - clat[None, sl]) ** 2
        field += (amp[None, sl] * np.exp(-d2 / (2 * width[None, sl] ** 2))).sum(axis=1)
    return np.tanh(field / 1.2) * 1.2
