"""A synthetic telecom churn set shaped like the well-known public one, with known probabilities.

Columns follow the public IBM telecom churn CSV: ``customerID``, ``gender``, ``SeniorCitizen``
(0/1), ``Partner`` / ``Dependents`` / ``PhoneService`` / ``PaperlessBilling`` (Yes/No),
``tenure`` (months), ``MultipleLines``, ``InternetService`` and six add-on services (with "No
internet service"), ``Contract``, ``PaymentMethod``, ``MonthlyCharges``, ``TotalCharges`` (text,
blank for customers in their first month) and ``Churn`` (Yes/No, about 26 %).

The ground truth is non-linear: churn falls steeply over the first year of tenure, fibre
customers on month-to-month contracts leave much more than either alone, price hurts most in a
middle band, and add-on protection matters only for internet customers. Because each customer's
true churn probability is known, :attr:`SyntheticChurn.ceiling_auc` is the best ROC-AUC any model
can reach on the sample (the Bayes ceiling).

>>> data = make_churn(2000, seed=1)
>>> data.frame.shape, round(float(data.frame["Churn"].eq("Yes").mean()), 2)
((2000, 21), 0.26)
>>> 0.8 < data.ceiling_auc < 0.95
True
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

_SERVICES = ("OnlineSecurity", "OnlineBackup", "DeviceProtection", "TechSupport",
             "StreamingTV", "StreamingMovies")
_PAYMENTS = np.array(["Electronic check", "Mailed check", "Bank transfer (automatic)",
                      "Credit card (automatic)"], dtype=object)
_CONTRACTS = np.array(["Month-to-month", "One year", "Two year"], dtype=object)
_INTERNET = np.array(["DSL", "Fiber optic", "No"], dtype=object)


@dataclass
class SyntheticChurn:
    """A generated churn sample: the table, each row's true churn probability, and the ceiling."""

    frame: pd.DataFrame
    probability: np.ndarray
    target: str = "Churn"

    @property
    def y(self) -> np.ndarray:
        """1 for churners."""
        return (self.frame[self.target] == "Yes").to_numpy(dtype=int)

    @property
    def ceiling_auc(self) -> float:
        """ROC-AUC of the true probabilities on this sample: no model can do better on average."""
        return self.ceiling(np.arange(len(self.frame)))

    def ceiling(self, rows: np.ndarray | pd.Index | list[int]) -> float:
        """The ceiling ROC-AUC on a subset of rows (positions), e.g. a holdout."""
        from sklearn.metrics import roc_auc_score

        idx = np.asarray(rows)
        return float(roc_auc_score(self.y[idx], self.probability[idx]))

    def to_csv(self, path: str | Path) -> Path:
        """Write the table (not the probabilities) as CSV, like the public file."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.frame.to_csv(target, index=False)
        return target


def _yes_no(flags: np.ndarray) -> np.ndarray:
    return np.where(flags, "Yes", "No").astype(object)


def _true_logit(tenure: np.ndarray, contract: np.ndarray, fiber: np.ndarray,
                internet: np.ndarray, echeck: np.ndarray, paperless: np.ndarray,
                senior: np.ndarray, partner: np.ndarray, dependents: np.ndarray,
                security: np.ndarray, support: np.ndarray, streaming: np.ndarray,
                monthly: np.ndarray) -> np.ndarray:
    m2m = contract == 0
    logit = (
        2.6 * np.exp(-tenure / 9.0)                       # the first months are the riskiest
        - 0.012 * tenure                                  # loyalty keeps growing, slowly
        + np.select([m2m, contract == 1], [1.1, -0.2], -1.6)
        + 0.55 * fiber + 0.65 * (fiber & m2m)             # fibre on monthly terms: worst
        - 0.8 * ~internet
        + 0.55 * echeck + 0.3 * paperless
        + 0.35 * senior - 0.15 * partner - 0.3 * dependents
        - 0.5 * (internet & security) - 0.45 * (internet & support)
        + 0.2 * (streaming == 2)
        + 0.55 * np.exp(-(((monthly - 85.0) / 14.0) ** 2))  # a price band that hurts
    )
    return logit


def make_churn(n: int = 7043, *, seed: int = 0, churn_rate: float = 0.265,
               blanks: bool = True) -> SyntheticChurn:
    """Generate ``n`` telecom customers with a known churn probability each.

    Parameters
    ----------
    n:
        Rows (default 7,043, the size of the public set).
    seed:
        Random seed; the same seed gives the same table.
    churn_rate:
        Expected share of churners (the intercept is solved for it).
    blanks:
        Write ``TotalCharges`` as text, blank for customers with zero tenure, as in the public file.
    """
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    rng = np.random.default_rng(seed)
    senior = rng.random(n) < 0.16
    partner = rng.random(n) < 0.48
    dependents = rng.random(n) < np.where(partner, 0.5, 0.1)
    tenure = (1 + np.floor(rng.beta(0.7, 0.75, n) * 72)).clip(1, 72).astype(int)
    tenure[rng.random(n) < 0.0016] = 0
    # longer customers hold longer contracts
    score = tenure / 72 + rng.normal(0, 0.35, n)
    contract = np.where(score < 0.55, 0, np.where(score < 0.85, 1, 2))
    phone = rng.random(n) < 0.9
    internet_kind = rng.choice(3, n, p=[0.34, 0.44, 0.22])
    internet = internet_kind != 2
    fiber = internet_kind == 1
    services = {name: internet & (rng.random(n) < p) for name, p in
                zip(_SERVICES, (0.33, 0.44, 0.44, 0.34, 0.49, 0.5), strict=True)}
    multiple = phone & (rng.random(n) < 0.47)
    paperless = rng.random(n) < 0.59
    payment = rng.choice(4, n, p=[0.34, 0.23, 0.22, 0.21])
    monthly = (np.where(phone, 20.0, 0.0) + np.where(multiple, 5.0, 0.0)
               + np.select([internet_kind == 0, internet_kind == 1], [25.0, 50.0], 0.0)
               + sum(np.where(v, 5.0 + 5.0 * (i >= 4), 0.0)
                     for i, v in enumerate(services.values()))
               + rng.normal(0, 1.5, n))
    monthly = np.round(np.clip(monthly, 18.25, 118.75), 2)
    total = np.round(monthly * tenure * rng.normal(1.0, 0.04, n), 2)
    streaming = services["StreamingTV"].astype(int) + services["StreamingMovies"].astype(int)
    logit = _true_logit(tenure, contract, fiber, internet, payment == 0, paperless, senior,
                        partner, dependents, services["OnlineSecurity"],
                        services["TechSupport"], streaming, monthly)
    lo, hi = -15.0, 15.0
    for _ in range(60):  # solve the intercept for the churn rate
        mid = (lo + hi) / 2
        if (1 / (1 + np.exp(-(logit + mid)))).mean() < churn_rate:
            lo = mid
        else:
            hi = mid
    probability = 1 / (1 + np.exp(-(logit + (lo + hi) / 2)))
    churn = rng.random(n) < probability

    ids = np.char.add(np.char.add(rng.integers(1000, 9999, n).astype(str), "-"),
                      np.array([f"{i:05d}" for i in range(n)]))
    no_net = "No internet service"
    frame = pd.DataFrame({
        "customerID": ids,
        "gender": np.where(rng.random(n) < 0.5, "Female", "Male").astype(object),
        "SeniorCitizen": senior.astype(int),
        "Partner": _yes_no(partner),
        "Dependents": _yes_no(dependents),
        "tenure": tenure,
        "PhoneService": _yes_no(phone),
        "MultipleLines": np.where(phone, _yes_no(multiple), "No phone service").astype(object),
        "InternetService": _INTERNET[internet_kind],
        **{name: np.where(internet, _yes_no(flags), no_net).astype(object)
           for name, flags in services.items()},
        "Contract": _CONTRACTS[contract],
        "PaperlessBilling": _yes_no(paperless),
        "PaymentMethod": _PAYMENTS[payment],
        "MonthlyCharges": monthly,
        "TotalCharges": (np.where(tenure == 0, " ", np.char.mod("%.2f", total)).astype(object)
                         if blanks else np.where(tenure == 0, np.nan, total)),
        "Churn": _yes_no(churn),
    })
    return SyntheticChurn(frame=frame, probability=probability)


def write_churn_csv(path: str | Path, n: int = 7043, *, seed: int = 0) -> Path:
    """Write a CSV shaped like the public telecom churn file (7,043 rows by default)."""
    return make_churn(n, seed=seed).to_csv(path)
