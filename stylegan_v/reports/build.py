"""Build ``reports/``: tables (md, tex, csv), figures (png, pdf) and the README index, from MLflow + statistics."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path
from typing import Any

from stylegan_v.files import atomic_write_text
from stylegan_v.models.config import MotionConfig
from stylegan_v.reports import figures, g3an_grids, g3an_table, paper_tables
from stylegan_v.reports.config import ReportConfig
from stylegan_v.reports.paper import PAPER_NUMBERS, PaperNumbers
from stylegan_v.reports.runs import load_runs
from stylegan_v.reports.tables import Table, to_markdown, write_table

log = logging.getLogger(__name__)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def build_report(rcfg: ReportConfig) -> dict[str, Any]:
    out = Path(rcfg.out_dir)
    tables_dir, figures_dir = out / "tables", out / "figures"
    for stale in (tables_dir, figures_dir):  # outputs of runs that are gone must not linger
        if stale.is_dir():
            shutil.rmtree(stale)
    paper = PaperNumbers()
    store = load_runs(rcfg.tracking_uri, rcfg.experiment)
    stats_dir = Path(rcfg.stats_dir) if rcfg.stats_dir else None
    stats = paper_tables.load_stats(stats_dir)
    mcfg = MotionConfig()
    tables: list[Table] = [
        paper_tables.table4(paper, store),
        paper_tables.table5(paper, store, rcfg.table5_dataset, Path(rcfg.data_dir) if rcfg.data_dir else None),
        paper_tables.table6(paper, store, rcfg.table6_dataset),
        paper_tables.table7(paper, stats, stats_dir),
        paper_tables.figure9_cycles(paper, mcfg.omega_min, mcfg.omega_max, mcfg.random_xi, mcfg.random_seed,
                                    mcfg.embed_dim // 2),
        paper_tables.lstm_comparison(paper, store),
        *paper_tables.ablation_tables(store, paper),
        paper_tables.runs_table(store),
    ]
    table_files = {t.key: write_table(t, tables_dir) for t in tables}
    g3an_table1 = g3an_table.table1(paper)
    table_files[g3an_table1.key] = write_table(g3an_table1, tables_dir)

    fmts, dpi = list(rcfg.figure_formats), rcfg.dpi
    fig9, cycles = figures.figure9(rcfg.fig9_frames, rcfg.fig9_code_distance, rcfg.fig9_seed)
    figure_files = {"figure9": figures.save(fig9, figures_dir, "figure9", fmts, dpi),
                    "figure10": figures.save(figures.figure10(stats, stats_dir), figures_dir, "figure10", fmts, dpi)}
    runs = store.finished_training_runs()
    figure_files["training_curves"] = figures.save(figures.training_curves(runs), figures_dir, "training_curves",
                                                   fmts, dpi)
    for run in list(reversed(runs))[: rcfg.max_sample_runs]:
        grids = figures.sample_grids(run)
        if grids:
            key = f"samples_{_slug(run.name)}"
            figure_files[key] = figures.save(figures.samples_figure(run, grids), figures_dir, key, fmts, dpi)

    g3an_files, g3an_lines = _g3an_figures(store, rcfg, figures_dir)
    figure_files.update(g3an_files)

    readme = out / "README.md"
    text = _readme(tables, table_files, {k: v for k, v in figure_files.items() if k not in g3an_files}, store,
                   stats_dir, stats, cycles)
    atomic_write_text(readme, text + _g3an_readme(g3an_table1, table_files[g3an_table1.key], g3an_files, g3an_lines))
    log.info("report: %d tables, %d figures from %d runs -> %s", len(tables), len(figure_files), len(runs), out)
    return {"out_dir": str(out), "tables": {k: [str(p) for p in v] for k, v in table_files.items()},
            "figures": {k: [str(p) for p in v] for k, v in figure_files.items()}, "num_runs": len(runs),
            "runs_reason": store.reason, "cycle_lengths": cycles, "readme": str(readme), "g3an": g3an_lines}


def _g3an_figures(store: Any, rcfg: ReportConfig, figures_dir: Path) -> tuple[dict[str, list[Path]], list[str]]:
    """The C.1-C.4 grids of the newest G3AN run (figure files by key) and the README lines that say what they
    show, or in one line why there are none."""
    from stylegan_v.training.checkpoint import CheckpointError, load_generator

    run, path, reason = g3an_grids.g3an_checkpoint(store)
    if run is None or path is None:
        return {}, [f"C.1–C.4 grids: none, {reason}."]
    try:
        G, _ = load_generator(path)
    except CheckpointError as err:
        return {}, [f"C.1–C.4 grids: none, the last checkpoint of G3AN run `{run.name}` is unusable: {err}"]
    grids, skipped = g3an_grids.grids(G, path, rcfg.g3an_seed)
    files = {}
    for grid in grids:  # no run id in the image: a rebuild after a fresh training must give the same bytes
        title = (f"G3AN appendix {grid.title}\n{run.name} ({run.dataset}), G_ema of {path.name}, "
                 f"seed {rcfg.g3an_seed}; rows are videos")
        files[grid.key] = figures.save(figures.video_rows(grid.frames, grid.rows, title), figures_dir, grid.key,
                                       list(rcfg.figure_formats), rcfg.dpi)
    lines = [f"C.1–C.4 from G3AN run `{run.name}` ({run.short_id}, {run.dataset}): G_ema of its last checkpoint "
             f"`{path.name}`, the codes of `python -m stylegan_v.generate` in each mode with seed "
             f"{rcfg.g3an_seed}, every frame of the {G.video_frames}-frame video, one row per video.", *skipped]
    return files, lines


def _g3an_readme(table: Table, table_paths: list[Path], figure_files: dict[str, list[Path]],
                 lines: list[str]) -> str:
    links = " · ".join(f"[{p.suffix[1:]}](tables/{p.name})" for p in table_paths)
    out = ["", "## G3AN", "", to_markdown(table).rstrip("\n"), "", links, ""]
    for line in lines:
        out += [line, ""]
    for key, paths in figure_files.items():
        png = next((p for p in paths if p.suffix == ".png"), paths[0])
        out += [f"### {key}", "", f"![{key}](figures/{png.name})", "",
                " · ".join(f"[{p.suffix[1:]}](figures/{p.name})" for p in paths), ""]
    return "\n".join(out)


def _readme(tables: list[Table], table_files: dict[str, list[Path]], figure_files: dict[str, list[Path]],
            store: Any, stats_dir: Path | None, stats: dict, cycles: dict) -> str:
    runs = store.finished_training_runs()
    lines = ["# StyleGAN-V reproduction: report", "",
             # no wall-clock time: the same inputs give the same bytes (the reference report is committed)
             f"Generated by `python -m stylegan_v.report` from the MLflow store `{store.uri}`, "
             f"experiment `{store.experiment}` ({len(runs)} training runs"
             + (f"; {store.reason}" if store.reason else "") + f"), the dataset statistics in `{stats_dir}` "
             f"({', '.join(sorted(stats)) or 'none'}) and the paper's numbers in "
             f"`stylegan_v/reports/{PAPER_NUMBERS.name}`.", "",
             "A dash with a reason marks a cell we have not measured; † marks a reduced protocol "
             "(not comparable to the paper).", ""]
    if runs:
        lines += ["Runs: " + ", ".join(f"`{r.name}` ({r.short_id}, {r.status})" for r in runs), ""]
    lines += ["## Figures", ""]
    for key, paths in figure_files.items():
        png = next((p for p in paths if p.suffix == ".png"), paths[0])
        links = " · ".join(f"[{p.suffix[1:]}](figures/{p.name})" for p in paths)
        lines += [f"### {key}", "", f"![{key}](figures/{png.name})", "", links, ""]
    lines += [f"Figure 9 cycle lengths from `scheme_cycle_length`: {cycles}.", "", "## Tables", ""]
    for table in tables:
        links = " · ".join(f"[{p.suffix[1:]}](tables/{p.name})" for p in table_files[table.key])
        lines += [to_markdown(table).rstrip("\n"), "", links, ""]
    return "\n".join(lines)
