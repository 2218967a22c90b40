"""Self-contained HTML reports: headings, text, tables, figures (base64 PNG), a model card.

>>> report = Report("Churn model")
>>> report.add_table([{"algorithm": "lightgbm", "roc_auc": 0.85}], title="Leaderboard")
>>> "<td>lightgbm</td>" in report.to_html()
True
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#1b1f24;line-height:1.45;padding:0 1rem}
h1{border-bottom:2px solid #0b6e99;padding-bottom:.3rem}h2{margin-top:2rem;color:#0b6e99}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left}
th{background:#f3f6f9}td.num{text-align:right;font-variant-numeric:tabular-nums}
.figs{display:flex;flex-wrap:wrap;gap:1rem}.fig{flex:1 1 460px}.fig img{max-width:100%}
.card{background:#f8fafc;border:1px solid #d0d7de;border-radius:6px;padding:.5rem 1rem}
.muted{color:#57606a;font-size:.85rem}.warn{color:#9a6700}
"""


def figure_png(figure: Any, *, dpi: int = 110) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:
            return '<td class="num">–</td>'
        text = f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
        return f'<td class="num">{text}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value:,}</td>'
    return f"<td>{html.escape('' if value is None else str(value))}</td>"


class Report:
    """An HTML page built section by section; ``write(path)`` saves one self-contained file.

    Parameters
    ----------
    title:
        The page title.
    subtitle:
        A line under the title (e.g. data source and run id).
    """

    def __init__(self, title: str, *, subtitle: str = "") -> None:
        self.title = title
        self.subtitle = subtitle
        self._parts: list[str] = []
        self._figures: list[str] = []

    def _flush_figures(self) -> None:
        if self._figures:
            self._parts.append('<div class="figs">' + "".join(self._figures) + "</div>")
            self._figures = []

    def add_heading(self, text: str) -> None:
        """A section heading."""
        self._flush_figures()
        self._parts.append(f"<h2>{html.escape(text)}</h2>")

    def add_text(self, text: str, *, css: str = "") -> None:
        """A paragraph (escaped)."""
        self._flush_figures()
        cls = f' class="{css}"' if css else ""
        self._parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def add_list(self, items: Sequence[str]) -> None:
        """A bullet list (escaped)."""
        self._flush_figures()
        self._parts.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items)
                           + "</ul>")

    def add_table(self, rows: Sequence[Mapping[str, Any]] | Any, *, title: str | None = None,
                  columns: Sequence[str] | None = None) -> None:
        """A table from a list of dicts or a pandas DataFrame."""
        self._flush_figures()
        if hasattr(rows, "to_dict"):
            rows = rows.to_dict(orient="records")
        rows = list(rows)
        if title:
            self._parts.append(f"<h3>{html.escape(title)}</h3>")
        if not rows:
            self._parts.append('<p class="muted">(none)</p>')
            return
        cols = list(columns or rows[0].keys())
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
        body = "".join("<tr>" + "".join(_cell(r.get(c)) for c in cols) + "</tr>" for r in rows)
        self._parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def add_figure(self, figure: Any, *, caption: str = "") -> None:
        """A matplotlib figure, embedded as base64 PNG (figures flow side by side)."""
        data = base64.b64encode(figure_png(figure)).decode("ascii")
        cap = f'<div class="muted">{html.escape(caption)}</div>' if caption else ""
        self._figures.append(f'<div class="fig"><img alt="{html.escape(caption)}" '
                             f'src="data:image/png;base64,{data}">{cap}</div>')

    def add_model_card(self, card: Mapping[str, Any]) -> None:
        """A model card: key facts (use, data, metrics, limitations) as a definition list."""
        self._flush_figures()
        items = "".join(f"<dt><b>{html.escape(str(k))}</b></dt><dd>{html.escape(_text(v))}</dd>"
                        for k, v in card.items())
        self._parts.append(f'<div class="card"><dl>{items}</dl></div>')

    def to_html(self) -> str:
        """The whole page."""
        self._flush_figures()
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        sub = f'<p class="muted">{html.escape(self.subtitle)} · {stamp}</p>'
        return (f"<!doctype html><html><head><meta charset='utf-8'><title>"
                f"{html.escape(self.title)}</title><style>{_CSS}</style></head><body>"
                f"<h1>{html.escape(self.title)}</h1>{sub}{''.join(self._parts)}</body></html>")

    def write(self, path: str | Path) -> Path:
        """Write the page to ``path`` (folders created); returns the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.to_html(), encoding="utf-8")
        return target


def _text(value: Any) -> str:
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
