"""A table as data (title, header, rows of strings, notes) and its Markdown, LaTeX and CSV renderings.

Cells are already-formatted strings, so the three files show the same digits and a second build from the
same inputs is byte-identical (no timestamps, no dict-order or float-repr surprises).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from stylegan_v.files import atomic_write_text

DASH = "—"


@dataclass
class Table:
    key: str  # file stem: table4, table6, ablation_period_scaling, ...
    title: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, row: list[str]) -> None:
        assert len(row) == len(self.header), f"{self.key}: row {row} does not match header {self.header}"
        self.rows.append(row)


def missing(reason: str) -> str:
    """An unmeasured cell: a dash and the reason, never a number."""
    return f"{DASH} ({reason})"


def fmt_number(value: float | None, digits: int = 4) -> str:
    """``digits`` significant digits, fixed notation for ordinary magnitudes; deterministic across platforms."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    value = float(value)
    if value == 0.0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    if -3 <= magnitude < 7:
        decimals = max(digits - 1 - magnitude, 0)
        return f"{value:.{decimals}f}"
    return f"{value:.{digits - 1}e}"


def fmt_mean_std(mean: float, std: float | None, n: int | None = None) -> str:
    text = fmt_number(mean) if std is None else f"{fmt_number(mean)} ± {fmt_number(std, 3)}"
    return text if n is None else f"{text} (n={n})"


def to_markdown(table: Table) -> str:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = [f"### {table.title}", "", "| " + " | ".join(map(esc, table.header)) + " |",
             "|" + "|".join("---" for _ in table.header) + "|"]
    lines += ["| " + " | ".join(map(esc, row)) + " |" for row in table.rows]
    if table.notes:
        lines += [""] + [f"- {note}" for note in table.notes]
    return "\n".join(lines) + "\n"


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "±": r"$\pm$", "—": "---", "²": r"$^2$", "₁₆": r"$_{16}$", "₁₂₈": r"$_{128}$", "†": r"$^\dagger$",
                  "×": r"$\times$", "≠": r"$\neq$"}


_LATEX_SPECIALS = "\\&%$#_{}~^"  # escaped one character at a time, so no escape is escaped again


def latex_escape(text: str) -> str:
    out = "".join(_LATEX_ESCAPES.get(ch, ch) if ch in _LATEX_SPECIALS else ch for ch in text)
    for src, latex in _LATEX_ESCAPES.items():  # then the symbols, whose LaTeX uses the specials
        if src not in _LATEX_SPECIALS:
            out = out.replace(src, latex)
    return out


def to_latex(table: Table) -> str:
    cols = "l" + "r" * (len(table.header) - 1)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{cols}}}", r"\toprule",
             " & ".join(latex_escape(h) for h in table.header) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in table.rows]
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{latex_escape(table.title)}}}"]
    if table.notes:
        lines += [r"\par\footnotesize"] + [latex_escape(note) + r"\par" for note in table.notes]
    lines += [rf"\label{{tab:{table.key.replace('_', '-')}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.header)
    writer.writerows(table.rows)
    return buf.getvalue()


def write_table(table: Table, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix, render in (("md", to_markdown), ("tex", to_latex), ("csv", to_csv)):
        path = out_dir / f"{table.key}.{suffix}"
        atomic_write_text(path, render(table))
        paths.append(path)
    return paths
