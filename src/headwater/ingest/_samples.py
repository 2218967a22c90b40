"""Realistic messy sample data (orders and customers) and the contracts that go with it.

The quickstart ingests these files. Every defect the cleansing and the rules handle appears at
least once, at a known place, so tests and the quickstart's output can point at it:

- ``orders/orders.csv`` (UTF-8 with BOM): currency signs and thousands separators, mixed
  timestamp formats and offsets, mixed booleans, whitespace and case noise, 'N/A' and blanks, an
  exact duplicate row, a duplicate order id, a negative quantity, an order shipped before it was
  placed, an amount that is not a number, an unknown status, an extreme amount, a row with one
  field too many.
- ``orders/orders_eu.csv`` (Latin-1, ``;``-separated, decimal commas, headers in another case).
- ``orders/orders_archive.parquet`` (typed columns, and an unknown column ``internal_note``).
- ``customers/customers.jsonl`` (nested ``address`` objects, a bad email, an older duplicate).
- ``customers/customers_legacy.csv`` (Latin-1).
- ``contracts/orders.yaml`` and ``contracts/customers.yaml``.
"""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ORDERS_CONTRACT = """\
# The orders every source delivers: web shop CSV, EU marketplace CSV, archive Parquet.
# Reference: docs/contracts.md
version: 1
name: orders
description: Orders from the web shop, the EU marketplace and the archive.
primary_key: [order_id]          # a second row with the same id goes to the quarantine
dedupe: exact                    # exact copies are dropped (and counted)
unknown_columns: quarantine      # a value in an undeclared column sends the row to the quarantine
columns:
  order_id: {type: integer}
  customer_id: {type: integer, nullable: false}
  ordered_at:
    type: timestamp              # offsets are honoured; stored in UTC
    nullable: false
    timezone: Europe/Paris       # for values without an offset
  shipped_on: {type: date}
  status:
    nullable: false
    cleanse: {case: lower}
    map: {shpd: shipped, canceled: cancelled}
    allowed: [new, paid, shipped, delivered, cancelled]
  channel:
    cleanse: {case: lower}
    fill: {value: web}           # blank channels were web orders
    allowed: [web, store, phone, marketplace]
  amount:
    type: decimal(12,2)          # '$1,234.50', 'USD 99', '1.234,50 €' all read
    nullable: false
    min: 0
    outliers: {method: iqr, k: 3, action: flag}   # adds amount_outlier
  quantity: {type: integer, min: 1, max: 1000}
  paid: {type: boolean}          # yes/no, y/n, 1/0, true/false, on/off
  weight_kg:
    type: float
    from: weight_lb
    unit: {from: lb, to: kg}
    min: 0
  notes: {max_length: 200, cleanse: {whitespace: true}}
rules:
  shipped_after_ordered:
    check: shipped_on >= date(ordered_at)
    message: the order was shipped before it was placed
table:
  min_rows: 1
"""

CUSTOMERS_CONTRACT = """\
# Customers from the CRM export (JSON Lines, nested address) and the legacy system (CSV).
# Reference: docs/contracts.md
version: 1
name: customers
primary_key: [customer_id]
dedupe: {by: [customer_id], latest: updated_at}   # keep each customer's newest record
unknown_columns: keep
cleanse: {whitespace: true}
columns:
  customer_id: {type: integer}
  name: {nullable: false, cleanse: {case: title}}
  email:
    nullable: false
    cleanse: {case: lower}
    pattern: '[^@\\s]+@[^@\\s]+\\.[a-z]{2,}'
  country: {cleanse: {case: upper}, min_length: 2, max_length: 2}
  city: {from: address_city}
  postcode: {from: address_postcode}
  vip: {type: boolean}
  signed_up: {type: date}
  lifetime_value: {type: float, min: 0}
  updated_at: {type: timestamp, nullable: false}
rules:
  signed_up_in_the_past: signed_up <= today()
"""

_STATUSES = ["new", "paid", "shipped", "delivered", "cancelled"]
_CHANNELS = ["web", "store", "phone", "marketplace"]
_NOTES = ["", "gift wrap, please", "leave at the door", "call before delivery", "fragile"]
_NAMES = ["ada lovelace", "Grace Hopper", "ALAN TURING", "katherine johnson", "Edsger Dijkstra",
          "barbara liskov", "Donald Knuth", "frances allen", "John Backus", "radia perlman"]
_CITIES = [("Paris", "75001", "FR"), ("Berlin", "10115", "DE"), ("Lyon", "69001", "FR"),
           ("München", "80331", "DE"), ("Zürich", "8001", "CH"), ("London", "EC1A", "GB")]


def make_messy_samples(folder: str | Path, *, rows: int = 200, seed: int = 7) -> list[Path]:
    """Write the messy sample files and their contracts under ``folder``; return their paths.

    ``rows`` is the number of clean generated orders in ``orders.csv`` (the defects are added
    on top). The output is the same for the same arguments.

    >>> import tempfile
    >>> [p.name for p in make_messy_samples(tempfile.mkdtemp())][:2]
    ['orders.csv', 'orders_eu.csv']
    """
    root = Path(folder)
    for sub in ("orders", "customers", "contracts"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    paths = [
        _orders_csv(root / "orders" / "orders.csv", rng, rows),
        _orders_eu(root / "orders" / "orders_eu.csv", rng),
        _orders_parquet(root / "orders" / "orders_archive.parquet", rng),
        _customers_jsonl(root / "customers" / "customers.jsonl", rng),
        _customers_csv(root / "customers" / "customers_legacy.csv"),
    ]
    for name, text in (("orders.yaml", ORDERS_CONTRACT), ("customers.yaml", CUSTOMERS_CONTRACT)):
        path = root / "contracts" / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


_ORDER_HEADER = ["order_id", "customer_id", "ordered_at", "shipped_on", "status", "channel",
                 "amount", "quantity", "paid", "weight_lb", "notes"]
_START = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


def _stamp(rng: random.Random, moment: datetime) -> str:
    """The same moment written in one of the ways exports write it."""
    style = rng.randrange(6)
    if style == 0:
        return moment.isoformat().replace("+00:00", "Z")
    if style == 1:
        return moment.astimezone(_tz(2)).isoformat()
    if style == 2:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    if style == 3:
        return moment.strftime("%m/%d/%Y %H:%M")
    if style == 4:
        return moment.astimezone(_tz(-5)).strftime("%a, %d %b %Y %H:%M:%S %z")
    return moment.astimezone(_tz(1)).strftime("%Y-%m-%dT%H:%M:%S%z")


def _tz(hours: int):
    from datetime import timezone
    return timezone(timedelta(hours=hours))


def _amount(rng: random.Random, value: float) -> str:
    style = rng.randrange(5)
    if style == 0:
        return f"{value:.2f}"
    if style == 1:
        return f"${value:,.2f}"
    if style == 2:
        return f"USD {value:,.2f}"
    if style == 3:
        return f"{value:,.2f}"
    return f" {value:.2f} "


def _bool(rng: random.Random, value: bool) -> str:
    words = (["yes", "Y", "true", "1", "on", "TRUE"] if value
             else ["no", "N", "false", "0", "off", "False"])
    return rng.choice(words)


def _order(rng: random.Random, order_id: int) -> list[str]:
    ordered = _START + timedelta(minutes=rng.randrange(60 * 24 * 60))
    status = rng.choice(_STATUSES)
    shipped = ""
    if status in {"shipped", "delivered"}:
        day = (ordered + timedelta(days=rng.randrange(1, 6))).date()
        shipped = rng.choice([day.isoformat(), day.strftime("%d.%m.%Y"),
                              day.strftime("%d %b %Y")])
    noisy_status = rng.choice([status, status.upper(), f"  {status.title()} "])
    if status == "shipped" and rng.random() < 0.2:
        noisy_status = "shpd"
    channel = rng.choice([*_CHANNELS, "", "WEB", " Store"])
    amount = round(rng.uniform(5, 2500), 2)
    weight = rng.choice([f"{rng.uniform(0.2, 40):.1f}", "", "N/A"])
    notes = rng.choice([*_NOTES, "  extra   spaces   inside  "])
    return [str(order_id), str(rng.randrange(1, 60)), _stamp(rng, ordered), shipped, noisy_status,
            channel, _amount(rng, amount), str(rng.randrange(1, 12)), _bool(rng, rng.random() < .7),
            weight, notes]


def _orders_csv(path: Path, rng: random.Random, rows: int) -> Path:
    lines = [_order(rng, 1000 + i) for i in range(rows)]
    defects = [
        ["2001", "12", "2024-03-05T09:30:00+01:00", "", "paid", "web", "twelve", "1", "yes",
         "1.0", "amount is not a number"],
        ["2002", "13", "2024-03-05 10:00:00", "", "paid", "web", "19.99", "-3", "no", "2.0",
         "negative quantity"],
        ["2003", "14", "2024-03-10T12:00:00Z", "2024-03-02", "shipped", "store", "$45.00", "1",
         "y", "3.5", "shipped before it was ordered"],
        ["2004", "15", "2024-03-11T08:00:00Z", "", "lost", "web", "12.00", "1", "n", "",
         "unknown status"],
        ["2005", "16", "2024-03-12T08:00:00Z", "", "paid", "web", "$249,999.00", "1", "yes", "",
         "an extreme amount: flagged as an outlier"],
        ["2006", "", "2024-03-12T09:00:00Z", "", "paid", "web", "10.00", "1", "maybe", "",
         "no customer, and paid is not a boolean"],
        ["2007", "17", "not a date", "", "new", "phone", "N/A", "1", "no", "", "bad timestamp"],
    ]
    lines[5:5] = defects[:3]
    lines[40:40] = defects[3:]
    lines.insert(60, list(lines[10]))                       # an exact duplicate: dropped
    dup_key = list(lines[20])
    dup_key[6], dup_key[10] = "1.00", "same order id, other amount"
    lines.insert(80, dup_key)                               # a duplicate order id: quarantined
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_ORDER_HEADER)
    writer.writerows(lines[:100])
    out.write('2999,18,2024-03-14T10:00:00Z,,paid,web,10.00,1,yes,1.0,"one field",too many\n')
    writer.writerows(lines[100:])
    path.write_text(out.getvalue(), encoding="utf-8-sig")
    return path


def _orders_eu(path: Path, rng: random.Random) -> Path:
    header = ["Order ID", "Customer ID", "Ordered At", "Shipped On", "Status", "Channel",
              "Amount", "Quantity", "Paid", "Weight LB", "Notes"]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow(header)
    for i in range(40):
        ordered = _START + timedelta(hours=rng.randrange(24 * 50))
        value = rng.uniform(5, 3000)
        whole, cents = divmod(round(value * 100), 100)
        amount = f"{whole:,}".replace(",", ".") + f",{cents:02d}" + rng.choice(["", " EUR", "EUR "])
        status = rng.choice(_STATUSES)
        shipped = ((ordered + timedelta(days=2)).strftime("%d.%m.%Y")
                   if status in {"shipped", "delivered"} else "")
        writer.writerow([3000 + i, rng.randrange(1, 60), ordered.strftime("%d.%m.%Y %H:%M"),
                         shipped, status.upper(), "marketplace", amount, rng.randrange(1, 5),
                         rng.choice(["1", "0"]), f"{rng.uniform(0.5, 20):.1f}".replace(".", ","),
                         rng.choice(["Lieferung für Müller, bitte läuten", "café crème à emporter",
                                     "Größe: groß, Farbe: grün", "", "-"])])
    path.write_bytes(out.getvalue().encode("latin-1"))
    return path


def _orders_parquet(path: Path, rng: random.Random) -> Path:
    n = 60
    ordered = [_START - timedelta(days=90) + timedelta(hours=7 * i) for i in range(n)]
    statuses = [rng.choice(["delivered", "cancelled"]) for _ in range(n)]
    table = pa.table({
        "order_id": pa.array([500 + i for i in range(n)], pa.int64()),
        "customer_id": pa.array([rng.randrange(1, 60) for _ in range(n)], pa.int32()),
        "ordered_at": pa.array(ordered, pa.timestamp("us", "UTC")),
        "shipped_on": pa.array([(o + timedelta(days=3)).date() if s == "delivered" else None
                                for o, s in zip(ordered, statuses, strict=True)], pa.date32()),
        "status": statuses,
        "channel": pa.array([None if i % 7 == 0 else "web" for i in range(n)], pa.string()),
        "amount": pa.array([round(rng.uniform(5, 900), 2) for _ in range(n)], pa.float64()),
        "quantity": pa.array([rng.randrange(1, 9) for _ in range(n)], pa.int64()),
        "paid": pa.array([rng.random() < 0.8 for _ in range(n)], pa.bool_()),
        "weight_lb": pa.array([round(rng.uniform(0.2, 30), 1) for _ in range(n)], pa.float64()),
        "notes": pa.array([None] * n, pa.string()),
        "internal_note": pa.array(["do not ship: fraud check" if i in (13, 42) else None
                                   for i in range(n)], pa.string()),
    })
    pq.write_table(table, path)
    return path


def _customer(rng: random.Random, customer_id: int, updated: datetime) -> dict:
    name = _NAMES[customer_id % len(_NAMES)]
    city, postcode, country = _CITIES[customer_id % len(_CITIES)]
    email = name.lower().replace(" ", ".") + f"{customer_id}@example.com"
    return {
        "customer_id": customer_id,
        "name": rng.choice([name, f"  {name}  ", name.upper()]),
        "email": rng.choice([email, email.upper(), f" {email}"]),
        "country": rng.choice([country, country.lower()]),
        "address": {"city": city, "postcode": postcode},
        "vip": rng.choice(["yes", "no", "Y", "N", "true", "false"]),
        "signed_up": rng.choice(["2023-05-04", "04.05.2023", "May 4, 2023", "2023/05/04"]),
        "lifetime_value": rng.choice([f"{rng.uniform(0, 5000):.2f}", "N/A", "$1,250.00"]),
        "updated_at": updated.isoformat(),
    }


def _customers_jsonl(path: Path, rng: random.Random) -> Path:
    now = datetime(2024, 4, 1, 12, 0, tzinfo=UTC)
    records = [_customer(rng, i, now - timedelta(hours=i)) for i in range(1, 50)]
    older = dict(records[4], name="Old Name", updated_at=(now - timedelta(days=30)).isoformat())
    records.append(older)                                  # an older copy of customer 5: dropped
    records[7]["email"] = "bob(at)example.com"             # a bad email: quarantined
    records[9]["country"] = "France"                       # too long for a country code
    records[11]["lifetime_value"] = "-20.00"               # negative: range(lifetime_value)
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _customers_csv(path: Path) -> Path:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["Customer ID", "Name", "Email", "Country", "City", "Postcode", "VIP",
                     "Signed Up", "Lifetime Value", "Updated At"])
    rows = [
        [101, "françois  dupont", "Francois.Dupont@Example.fr", "fr", "Paris", "75002", "oui?",
         "12/01/2022", "1.234,50", "2024-02-01 09:00:00"],
        [102, "jürgen müller", "jm@example.de", "DE", "München", "80331", "no", "2021-07-15",
         "980.00", "2024-02-02T10:00:00+01:00"],
        [103, "", "nobody@example.com", "GB", "London", "EC1A", "n", "2020-01-01", "0",
         "2024-02-03T00:00:00Z"],
        [104, "zoë ångström", "zoe@example.se", "SE", "Malmö", "21119", "Y", "2019-11-30",
         "N/A", "2024-02-04T00:00:00Z"],
    ]
    writer.writerows(rows)
    path.write_bytes(out.getvalue().encode("latin-1"))
    return path
