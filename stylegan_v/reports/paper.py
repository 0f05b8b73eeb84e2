"""The paper's published numbers (``paper_numbers.csv``): one row per cell, with the table and row it comes from."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from stylegan_v.reports.points import parse_overrides

PAPER_NUMBERS = Path(__file__).with_name("paper_numbers.csv")
COLUMNS = ("table", "row", "column", "value", "std", "unit", "source", "sweep_point")


@dataclass(frozen=True)
class PaperCell:
    table: str  # table4 ... table7, figure9, ablation:<sweep family>, g3an_table1 (G3AN appendix)
    row: str  # the row label as printed in the paper
    column: str
    value: str  # as printed ("9.445", "N/A", or a qualitative outcome for appendix D)
    std: str  # "" when the paper gives none
    unit: str
    source: str  # where in the appendix the number is printed
    # ablation rows: the sweep point the number belongs to, as the Hydra overrides that select it
    # (space-separated, e.g. ``+sweep/failed_experiments=hierarchical``); "" for the other tables
    sweep_point: str = ""

    def text(self) -> str:
        return f"{self.value} ± {self.std}" if self.std else self.value


def load_paper_numbers(path: Path = PAPER_NUMBERS) -> list[PaperCell]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: columns must be {COLUMNS}, got {reader.fieldnames}")
        return [PaperCell(**row) for row in reader]


class PaperNumbers:
    """Look-ups by (table, row, column), keeping the file's row order for each table."""

    def __init__(self, cells: list[PaperCell] | None = None) -> None:
        self.cells = load_paper_numbers() if cells is None else cells
        self._index = {(c.table, c.row, c.column): c for c in self.cells}

    def rows(self, table: str) -> list[str]:
        return list(dict.fromkeys(c.row for c in self.cells if c.table == table))

    def columns(self, table: str) -> list[str]:
        return list(dict.fromkeys(c.column for c in self.cells if c.table == table))

    def get(self, table: str, row: str, column: str) -> PaperCell | None:
        return self._index.get((table, row, column))

    def text(self, table: str, row: str, column: str) -> str:
        cell = self.get(table, row, column)
        return cell.text() if cell is not None else "—"

    def sweep_point(self, table: str, row: str) -> list[str]:
        """The overrides naming the row's sweep point ([] when the row names none)."""
        named = {c.sweep_point for c in self.cells if c.table == table and c.row == row and c.sweep_point}
        if len(named) > 1:
            raise ValueError(f"{PAPER_NUMBERS.name}: row {row!r} of {table} names two sweep points: {sorted(named)}")
        return parse_overrides(named.pop()) if named else []

    def tables(self) -> list[str]:
        return list(dict.fromkeys(c.table for c in self.cells))
