"""Tables 4-7, the ablation tables and the run list: the paper's numbers beside ours.

Ours come from MLflow (``metrics/<name>``, ``cost/*``) and from the metric records in each run directory
(``metric-<name>.jsonl``, which carry the protocol: Table 4's variants are told apart by it, not by name).
A cell we have not measured is a dash with the reason; nothing is ever filled in.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from stylegan_v.metrics.fvd import FVDProtocol
from stylegan_v.metrics.records import read_records
from stylegan_v.models.periods import init_periods, scheme_cycle_length
from stylegan_v.reports.embeddings import ACYCLIC_SCALING, ALIASING_BOUND, FIGURE9_PANELS
from stylegan_v.reports.paper import PAPER_NUMBERS, PaperNumbers
from stylegan_v.reports.points import SubmittedSweep, matches, run_overrides, run_point, submitted_sweeps, sweep_runs
from stylegan_v.reports.runs import TAG_PARENT, RunInfo, RunStore
from stylegan_v.reports.tables import DASH, Table, fmt_mean_std, fmt_number, missing

FVD_DEFAULTS = {f.name: f.default for f in fields(FVDProtocol)}  # the official FVD protocol

REDUCED_MARK = "†"
REDUCED_NOTE = (f"{REDUCED_MARK} reduced protocol (fewer videos than the metric's name, e.g. the CPU `metrics=cpu` "
                "run): not comparable to the paper's numbers.")

# ------------------------------------------------------------------------------------------ cells from runs


def _newest(runs: list[RunInfo]) -> RunInfo | None:
    return runs[-1] if runs else None  # runs are ordered by (start time, run id)


def _records(run: RunInfo, metric: str) -> list[dict[str, Any]]:
    return [r for r in run.metric_records() if r.get("metric") == metric]


def metric_cell(run: RunInfo, metric: str) -> tuple[str, str | None]:
    """The run's last snapshot value of ``metric`` (MLflow), with ± std and repeats from its record when they
    match; returns (cell, note) where the note names the run and the protocol."""
    last = run.last(f"metrics/{metric}")
    records = _records(run, metric)
    ok = [r for r in records if r.get("status") == "ok" and r.get("value") is not None]
    record = ok[-1] if ok else None
    if last is None and record is None:
        unavailable = [r for r in records if r.get("status") == "unavailable"]
        if unavailable:
            message = str(unavailable[-1].get("message", "")).split("\n")[0][:80]
            return missing(f"weights missing: {message}"), None
        return missing(f"{metric} not measured in run {run.name}"), None
    value = last[1] if last is not None else float(record["value"])
    std, n = None, None
    if record is not None and abs(float(record["value"]) - value) <= 1e-9 * max(1.0, abs(value)):
        std = record.get("std")
        n = len(record.get("values") or [value])
    reduced = bool(record.get("reduced")) if record is not None else run.params.get("metrics.reduced") == "True"
    cell = fmt_mean_std(value, std, n) + (f" {REDUCED_MARK}" if reduced else "")
    protocol = record.get("protocol", {}) if record is not None else {}
    where = f"step {last[0]} ({run.step_unit})" if last is not None else f"checkpoint {record.get('checkpoint', '?')}"
    note = (f"{metric} of run `{run.name}` ({run.short_id}, {run.dataset}, {run.model}) at {where}"
            + (f"; protocol {_protocol_text(protocol)}" if protocol else ""))
    return cell, note


def _protocol_text(p: dict[str, Any]) -> str:
    """Size, seed and every switch that differs from the official protocol."""
    keys = ("num_videos", "num_frames", "seed")
    changed = [k for k, v in p.items() if k not in keys and v != FVD_DEFAULTS.get(k, v)]
    return ", ".join(f"{k}={p.get(k)}" for k in (*keys, *changed) if k in p)


def _cost_cell(run: RunInfo) -> str:
    """Measured GPU-days (device-days for a CPU run), with the projection made before launch beside it."""
    gpu = run.last("cost/gpu_days")
    device = run.last("cost/device_days")
    if gpu is None and device is None:
        return missing(f"no cost/gpu_days in run {run.name}")
    on_gpu = gpu is not None and gpu[1] > 0
    projected = run.last("cost/projected_gpu_days" if on_gpu else "cost/projected_device_days")
    beside = f"projected {fmt_number(projected[1], 3)}" if projected is not None else "no projection"
    if on_gpu:
        return f"{fmt_number(gpu[1], 3)} ({beside})"
    return f"0 (CPU: {fmt_number(device[1], 3)} device-days; {beside})" if device is not None else "0"


# ------------------------------------------------------------------------------------------ Table 4

TABLE4_DATASETS = {"FF": "faceforensics", "ST": "sky_timelapse"}
# paper row -> (predicate on the record's protocol, how to evaluate that variant)
TABLE4_VARIANTS: dict[str, tuple[Callable[[dict], bool], str]] = {
    "Proper computation": (lambda p: True, "the default protocol"),
    "When resized to 128^2": (lambda p: p.get("pre_resize") == 128, "metrics.pre_resize=128"),
    "With jpg/png discrepancy": (lambda p: p.get("fake_jpeg_quality") == 75, "metrics.fake_jpeg_quality=75"),
    "When using all clips per video": (lambda p: p.get("real_selection") == "all", "metrics.real_selection=all"),
    "When using only first frames": (lambda p: p.get("real_selection") == "first", "metrics.real_selection=first"),
    "When using subsampling of s = 8": (lambda p: (p.get("subsample") or 1) == 8,
                                        "metrics.subsample=8 (or metric fvd2048_128f_subsample8f)"),
    "Still real images": (lambda p: p.get("real_selection") == "still", "metrics.real_selection=still"),
}


TABLE4_SWITCHES = ("real_selection", "fake_jpeg_quality", "pre_resize", "subsample")  # what the rows vary
PROTOCOL_DEFAULTS = {k: v for k, v in FVD_DEFAULTS.items() if k not in TABLE4_SWITCHES + ("num_videos", "num_frames", "seed")}


def table4_variant(protocol: dict[str, Any]) -> str | None:
    """The Table 4 row a 16-frame FVD record belongs to: the official protocol with at most one of the rows'
    switches changed. None for combinations of switches, or for a record made with another protocol (no row)."""
    if any(protocol.get(key, "absent") != value for key, value in PROTOCOL_DEFAULTS.items()):
        return None
    switched = [row for row, (pred, _) in TABLE4_VARIANTS.items() if row != "Proper computation" and pred(protocol)]
    base_ok = (protocol.get("real_selection") == "random_offset" and protocol.get("fake_jpeg_quality") is None
               and protocol.get("pre_resize") is None and (protocol.get("subsample") or 1) == 1)
    if not switched:
        return "Proper computation" if base_ok else None
    return switched[0] if len(switched) == 1 else None


def _fvd16_records(run: RunInfo) -> list[dict[str, Any]]:
    return [r for r in run.metric_records() if r.get("kind") == "fvd"
            and (r.get("protocol") or {}).get("num_frames") == 16]


def table4(paper: PaperNumbers, store: RunStore) -> Table:
    runs = store.finished_training_runs()
    ours = list(TABLE4_DATASETS.values())
    ours += sorted({r.dataset for r in runs if _fvd16_records(r)} - set(ours))
    header = ["Method", "FF (paper)", "ST (paper)"] + [f"{_ds_label(d)} (ours)" for d in ours]
    table = Table("table4", "Table 4. Subtleties of FVD₁₆: the paper's numbers (FF = FaceForensics 256², "
                  "ST = SkyTimelapse 256², one checkpoint) beside ours, one column per dataset", header)
    chosen: dict[str, RunInfo | None] = {}
    for ds in ours:
        cands = [r for r in runs if r.dataset == ds and _fvd16_records(r)]
        cands = [r for r in cands if not r.sweep_name] or cands  # headline runs before sweep points
        # one checkpoint per dataset, as in the paper: the run with the most variants, newest on ties
        chosen[ds] = max(cands, key=lambda r: (len({table4_variant(x["protocol"]) for x in _fvd16_records(r)}),
                                               r.start_time, r.run_id), default=None)
    any_reduced = False
    for row, (_, how) in TABLE4_VARIANTS.items():
        cells = [row, paper.text("table4", row, "FF"), paper.text("table4", row, "ST")]
        for ds in ours:
            run = chosen[ds]
            if run is None:
                has_runs = any(r.dataset == ds for r in runs)
                cells.append(missing("no FVD₁₆ records" if has_runs else f"not run on {ds}"))
                continue
            recs = [r for r in _fvd16_records(run) if table4_variant(r["protocol"]) == row]
            ok = [r for r in recs if r.get("status") == "ok" and r.get("value") is not None]
            if ok:
                rec = ok[-1]
                any_reduced |= bool(rec.get("reduced"))
                cells.append(fmt_mean_std(float(rec["value"]), rec.get("std"), len(rec.get("values") or [1]))
                             + (f" {REDUCED_MARK}" if rec.get("reduced") else ""))
            elif recs:
                cells.append(missing("weights missing: " + str(recs[-1].get("message", "")).split("\n")[0][:60]))
            else:
                cells.append(missing(f"not evaluated: {how}"))
        table.add(cells)
    for ds in ours:
        run = chosen[ds]
        if run is not None:
            recs = [r for r in _fvd16_records(run) if r.get("status") == "ok"]
            metrics = sorted({r["metric"] for r in recs})
            proto = _protocol_text(recs[-1]["protocol"]) if recs else ""
            table.notes.append(f"{_ds_label(ds)} (ours): run `{run.name}` ({run.short_id}), metrics {', '.join(metrics)}; "
                               f"last proper-protocol record: {proto}. Cells: mean ± std (n = repeats).")
    table.notes.append("Variants are recognised by each record's `protocol` (metric-<name>.jsonl in the run directory, "
                       "written by training snapshots and by `python -m stylegan_v.evaluate "
                       "metrics.checkpoint=<run_dir>/checkpoints/<file>.pt <switch>`); a record with two switches "
                       "belongs to no row.")
    if any_reduced:
        table.notes.append(REDUCED_NOTE)
    return table


def _ds_label(name: str) -> str:
    return {"faceforensics": "FF", "sky_timelapse": "ST"}.get(name, name)


# ------------------------------------------------------------------------------------------ Table 5

TABLE5_MODELS = {"MoCoGAN+SG2 (ours)": ("mocogan_sg2", None), "StyleGAN-V (ours)": ("stylegan_v", "acyclic")}
IS_METRIC = "isv2048_ucf"  # the paper's protocol: C3D, 2048 videos x 16 frames, 10 splits


def _model_runs(runs: list[RunInfo], dataset: str, model: str, motion: str | None) -> list[RunInfo]:
    match = [r for r in runs if r.dataset == dataset and r.model == model
             and (motion is None or r.params.get("model.motion.kind", motion) == motion)]
    plain = [r for r in match if not r.sweep_name]  # the paper's headline runs are not sweep points
    return plain or match


def real_video_records(data_dir: Path | None, dataset: str, metric: str = IS_METRIC) -> list[dict[str, Any]]:
    """IS records of the real videos themselves: ``python -m stylegan_v.evaluate metrics.fake=<data_dir>/<dataset>``
    appends them (key ``fake``: the video set scored) to ``<data_dir>/eval-<dataset>/metric-<metric>.jsonl``."""
    if data_dir is None:
        return []
    return [r for r in read_records(data_dir / f"eval-{dataset}", metric)
            if r.get("fake") and Path(str(r["fake"])).name == dataset]


def real_videos_cell(data_dir: Path | None, dataset: str) -> tuple[str, str | None]:
    records = real_video_records(data_dir, dataset)
    ok = [r for r in records if r.get("status") == "ok" and r.get("value") is not None]
    if not ok:
        if records:
            message = str(records[-1].get("message", "")).split("\n")[0][:80]
            return missing(f"weights missing: {message}"), None
        return missing(f"not measured: python -m stylegan_v.evaluate metrics=paper +metrics/table5=real_videos "
                       f"dataset={dataset}"), None
    rec = ok[-1]
    cell = fmt_mean_std(float(rec["value"]), rec.get("std")) + (f" {REDUCED_MARK}" if rec.get("reduced") else "")
    return cell, (f"Real videos: {IS_METRIC} of the video set `{rec['fake']}` ({rec.get('num_fake', '?')} videos, "
                  f"{rec.get('splits', '?')} splits; record {rec['path']} in {data_dir / f'eval-{dataset}'})")


def table5(paper: PaperNumbers, store: RunStore, dataset: str, data_dir: Path | None = None) -> Table:
    runs = store.finished_training_runs()
    table = Table("table5", f"Table 5. Inception Score on UCF-101 (C3D at 112²): paper beside ours ({dataset})",
                  ["Method", "IS (paper)", "IS (ours)"])
    notes = []
    for row in paper.rows("table5"):
        if row in TABLE5_MODELS:
            model, motion = TABLE5_MODELS[row]
            run = _newest(_model_runs(runs, dataset, model, motion))
            if run is None:
                cell = missing(f"not run: {model} on {dataset}")
            else:
                cell, note = metric_cell(run, IS_METRIC)
                if note:
                    notes.append(f"{row}: {note}")
        elif row == "Real videos":
            cell, note = real_videos_cell(data_dir, dataset)
            if note:
                notes.append(note)
        else:
            cell = missing("external method, not reimplemented here")
        table.add([row, paper.text("table5", row, "IS"), cell])
    table.notes = notes + ["Paper: mean ± std over 10 splits of 2048 videos × 16 frames."]
    if any(REDUCED_MARK in r[2] for r in table.rows):
        table.notes.append(REDUCED_NOTE)
    return table


# ------------------------------------------------------------------------------------------ Table 6

TABLE6_MODELS = {"MoCoGAN+SG2 (ours)": ("mocogan_sg2", None), "StyleGAN-V (ours)": ("stylegan_v", "acyclic"),
                 "StyleGAN2 [29]": ("stylegan_v", "none"), "G3AN (our implementation)": ("g3an", None)}
FVD16_METRICS = ("fvd2048_16f", "fvd256_16f")  # the paper's, then the reduced CPU one
FID_METRICS = ("fid50k_full", "fid2048_16f")  # the official (the paper's column), then the paper text's reading


BASELINES_SWEEP = "baselines"  # sweeps/baselines.yaml: every Table 6 model as one point, on the same data


def baselines_sweep_runs(store: RunStore, dataset: str | None = None) -> list[RunInfo]:
    """The runs of the newest ``+sweep=baselines`` submission, on ``dataset`` when given. A point's run is the
    one its point.json names: the StyleGAN-V point has the default config, so its run may have been trained (and
    tagged) by another sweep first. Submissions whose files are not readable here are grouped by parent run."""
    runs = [r for r in store.finished_training_runs() if dataset is None or r.dataset == dataset]
    submissions = sorted((s for s in submitted_sweeps(store).values() if s.name == BASELINES_SWEEP),
                         key=lambda s: s.submitted)
    groups = [g for g in ([r for r in runs if sweep.point_of(r) is not None] for sweep in submissions) if g]
    if groups:
        return groups[-1]
    by_parent: dict[str, list[RunInfo]] = {}
    for run in runs:
        if run.sweep_name == BASELINES_SWEEP:
            by_parent.setdefault(run.tags.get(TAG_PARENT, ""), []).append(run)
    return max(by_parent.values(), key=lambda rs: max((r.start_time, r.run_id) for r in rs)) if by_parent else []


def table6(paper: PaperNumbers, store: RunStore, dataset: str) -> Table:
    """The paper's rows beside ours. Ours come from ONE baselines sweep when there is one (each row's run matched
    by its config: model.name and model.motion.kind), else from the newest run of each model."""
    runs = store.finished_training_runs()
    if any(r.dataset == dataset for r in runs):
        ours_ds, fallback = dataset, None
    else:
        swept = baselines_sweep_runs(store)
        plain = [r for r in runs if not r.sweep_name] or runs
        fallback = swept[-1].dataset if swept else (plain[-1].dataset if plain else None)
        ours_ds = fallback or dataset
    baseline_runs = baselines_sweep_runs(store, ours_ds)
    table = Table("table6", f"Table 6. FVD₁₆, FID and training cost (GPU-days): paper (FaceForensics 256²) beside "
                  f"ours ({ours_ds})",
                  ["Method", "FVD₁₆ (paper)", "FVD₁₆ (ours)", "FID (paper)", "FID (ours)",
                   "Training cost (paper)", "Training cost (ours)"])
    notes = []
    if fallback is not None:
        notes.append(f"No run on {dataset}: ours are the runs on {fallback}, a different dataset — not comparable.")
    rows = paper.rows("table6") + [r for r in TABLE6_MODELS if r not in paper.rows("table6")]
    for row in rows:
        p = [paper.text("table6", row, c) for c in ("FVD16", "FID", "Training cost")]
        if row not in TABLE6_MODELS:
            ext = missing("external method, not reimplemented here")
            table.add([row, p[0], ext, p[1], DASH, p[2], DASH])
            continue
        model, motion = TABLE6_MODELS[row]
        what = f"{model}{'' if motion is None else f' (model.motion.kind={motion})'}"
        if baseline_runs:
            run = _newest([r for r in baseline_runs if r.model == model
                           and (motion is None or r.params.get("model.motion.kind", motion) == motion)])
            absent = f"no point of the baselines sweep is {what}"
        else:
            run = _newest(_model_runs(runs, ours_ds, model, motion))
            absent = f"not run: {what} on {ours_ds}"
        if run is None:
            table.add([row, p[0], missing(absent), p[1], DASH, p[2], DASH])
            continue
        fvd_metric = next((m for m in FVD16_METRICS if run.last(f"metrics/{m}") or _records(run, m)), FVD16_METRICS[0])
        fvd, fvd_note = metric_cell(run, fvd_metric) if motion != "none" else ("N/A (image generator)", None)
        fid_metric = next((m for m in FID_METRICS if run.last(f"metrics/{m}") or _records(run, m)), FID_METRICS[0])
        fid, fid_note = metric_cell(run, fid_metric)
        table.add([row, p[0], fvd, p[1], fid, p[2], _cost_cell(run)])
        size = run.params.get("dataset.resolution")
        notes += [f"{row}: {n}" for n in (fvd_note, fid_note) if n]
        if size:
            notes.append(f"{row}: trained at {size}² ({what}, sweep point {run.sweep_point or DASH}).")
    if baseline_runs:
        parent = baseline_runs[0].tags.get(TAG_PARENT, "")[:8]
        notes.append(f"Ours: the runs of one `+sweep=baselines` submission (parent run {parent}) on {ours_ds}, each "
                     "row's run matched by its config (model.name, model.motion.kind; StyleGAN2 = StyleGAN-V with "
                     "model.motion.kind=none), value at its last snapshot.")
    else:
        notes.append("Ours: the newest non-sweep run per model (no `+sweep=baselines` submission on this dataset), "
                     "value at its last snapshot.")
    table.notes = notes + ["Training cost from MLflow `cost/gpu_days` (device-days shown when no GPU was used), beside it "
                           "the projection made before launch (`cost/projected_gpu_days`, as `--plan` prints it). "
                           "Paper: FVD₁₆ on 2048 videos; FID as the official fid50k_full (50 000 frames of 3125 videos)."]
    if any(REDUCED_MARK in c for r in table.rows for c in r):
        table.notes.append(REDUCED_NOTE)
    return table


# ------------------------------------------------------------------------------------------ Table 7

TABLE7_DATASETS = {"faceforensics": "FaceForensics [54]", "sky_timelapse": "SkyTimelapse [79]",
                   "ucf101": "UCF-101 [63]", "rainbow_jelly": "RainbowJelly", "mead": "MEAD [73]"}


def load_stats(stats_dir: Path | None) -> dict[str, dict[str, Any]]:
    """``data/stats/<name>.json`` per prepared dataset (``python -m stylegan_v.data.stats``), by name."""
    if stats_dir is None or not stats_dir.is_dir():
        return {}
    out = {}
    for path in sorted(stats_dir.glob("*.json")):
        stats = json.loads(path.read_text())
        if "length_histogram" in stats and "name" in stats:
            out[stats["name"]] = stats
    return out


def table7(paper: PaperNumbers, stats: dict[str, dict[str, Any]], stats_dir: Path | None) -> Table:
    table = Table("table7", "Table 7. Dataset statistics: paper beside ours (from `python -m stylegan_v.data.stats`)",
                  ["Dataset", "#hours (paper)", "#hours (ours)", "avg len (paper)", "avg len (ours)",
                   "FPS (paper)", "FPS (ours)", "#speakers (paper)", "#speakers (ours)", "#videos (ours)"])
    names = list(TABLE7_DATASETS) + sorted(set(stats) - set(TABLE7_DATASETS))
    for name in names:
        row = TABLE7_DATASETS.get(name, name)
        p = {c: paper.text("table7", row, c) for c in ("#hours", "avg len", "FPS", "#speakers")}
        if p["avg len"] != DASH:
            p["avg len"] += " s"
        s = stats.get(name)
        if s is None:
            absent = missing(f"dataset absent: no {name}.json in {stats_dir}")
            table.add([row, p["#hours"], absent, p["avg len"], DASH, p["FPS"], DASH, p["#speakers"], DASH, DASH])
            continue
        speakers = "N/A" if s.get("num_speakers") is None else str(s["num_speakers"])
        table.add([row, p["#hours"], fmt_number(s["hours"], 3), p["avg len"], f"{fmt_number(s['mean_length_s'], 3)} s",
                   p["FPS"], fmt_number(float(s["fps"]), 3), p["#speakers"], speakers, str(s["num_videos"])])
    table.notes = ["Ours: hours and mean length at each video's own frame rate; content hashes: "
                   + ", ".join(f"{n} {s.get('content_hash', '?')[:12]}" for n, s in sorted(stats.items()))
                   if stats else f"Ours: no dataset statistics in {stats_dir} (run `python -m stylegan_v.data.stats`)."]
    return table


# ------------------------------------------------------------------------------------------ Figure 9 cycles

def figure9_cycles(paper: PaperNumbers, omega_min: float, omega_max: float, random_xi: float, random_seed: int,
                   embed_waves: int) -> Table:
    """Each panel's caption cycle beside the model's ``scheme_cycle_length`` at the panel's settings (those drawn
    in Figure 9), then the model's own default schemes at its config (arguments)."""
    table = Table("figure9_cycles", "Figure 9 cycle lengths (frames): the caption's beside the model's "
                  "`scheme_cycle_length` at the settings drawn", ["Panel", "cycle length (paper)", "cycle length (ours)",
                                                                  "settings (ours)"])
    rows = paper.rows("figure9")
    for row, panel in zip(rows, FIGURE9_PANELS):
        ours = scheme_cycle_length(panel.scheme, panel.waves, panel.omega_min, panel.omega_max, panel.random_xi,
                                   panel.random_seed)
        periods = init_periods(panel.scheme, panel.waves, panel.omega_min, panel.omega_max, panel.random_xi,
                               panel.random_seed)
        table.add([row, paper.text("figure9", row, "cycle length"), _int_text(ours),
                   f"{panel.settings()}; periods {', '.join(f'{p:.1f}' for p in periods.tolist())}"])
    for row in rows[len(FIGURE9_PANELS):]:
        table.add([row, paper.text("figure9", row, "cycle length"), "none (acyclic by construction)",
                   f"linear scaling of (c): ω_min = {ACYCLIC_SCALING.omega_min:g}, ω_max = {ACYCLIC_SCALING.omega_max:g}"])
    for scheme in ("linear", "geometric"):
        ours = scheme_cycle_length(scheme, embed_waves, omega_min, omega_max, random_xi, random_seed)
        table.add([f"model default: {scheme}, {embed_waves} waves (initial periods)", DASH, _int_text(ours),
                   f"ω_min = {fmt_number(omega_min)}, ω_max = {fmt_number(omega_max)} (model config)"])
    table.notes = [f"Panels: no period under the aliasing bound of appendix B.3 ({ALIASING_BOUND:g} frames); "
                   "(b) is the first seed whose N(0, I) draw has the caption's cycle; (c) is eq. 6 at the only "
                   "whole-frame ω_min, ω_max with the caption's cycle (with the paper's ω_max = 2^10 no ω_min gives "
                   "352). The cycle is the LCM of the initial periods rounded to whole frames "
                   "(stylegan_v.models.periods)."]
    return table


def _int_text(n: int) -> str:
    return str(n) if n < 10**9 else f"{fmt_number(float(n))} ({len(str(n))} digits)"


# ------------------------------------------------------------------------------------------ ablations & runs

ABLATION_FAMILIES = {
    "period_scaling": "Period scaling of the positional embedding (appendix B.3, Figure 9)",
    "omega_min": "Shortest initial period ω_min (appendix A.1, B.3)",
    "kernel_size": "Motion mapping kernel size (appendix B.1)",
    "num_frames": "Frames per video k in sparse training (§3.3, appendix H)",
    "failed_experiments": "Failed experiments (appendix D)",
    "paper_text": "The paper's text against the official code (motion module)",
    "baselines": "Baselines: motion codes and generators (appendix C, Table 6)",
    "lstm_motion": "Our motion codes against LSTM motion codes, FVD₁₆ and FVD₁₂₈ (appendix C)",
}


def _paper_text(paper: PaperNumbers, ptable: str, row: str) -> str:
    cells = " / ".join(f"{c}: {paper.text(ptable, row, c)}" for c in paper.columns(ptable) if paper.get(ptable, row, c))
    return f"{row} — {cells}"


def ablation_table(name: str, children: list[RunInfo], paper: PaperNumbers, sweeps: dict[str, SubmittedSweep]) -> Table:
    """One row per run of the sweep, the paper's row beside it when the run's point has the overrides the paper
    row names; then the paper rows no run matched and the submitted points that have no run, each saying why."""
    title = ABLATION_FAMILIES.get(name, f"Sweep {name}")
    metric_names = sorted({m for r in children for m in r.metric_names()})
    header = ["Point", "Paper"] + [f"{m} (ours)" for m in metric_names] + ["progress", "cost", "run"]
    table = Table(f"ablation_{name}", f"Ablation: {title} — sweep `{name}`", header)
    ptable = f"ablation:{name}"
    wanted = {row: paper.sweep_point(ptable, row) for row in paper.rows(ptable)}
    submitted = [s for s in sweeps.values() if s.name == name]
    matched: set[str] = set()
    ran: set[tuple[str, int]] = set()  # (parent run id, point num) of every point that has a run
    parents: set[str] = set()
    from_labels = []
    def order(run: RunInfo) -> tuple:  # the sweep's own point order, then label; runs of one point by start
        found = run_point(run, sweeps, name)
        return (found is None, found[1].num if found else 0, run.sweep_point or "", run.start_time, run.run_id)

    for run in sorted(children, key=order):
        overrides = run_overrides(run, sweeps, name)
        found = run_point(run, sweeps, name)
        if found is not None:
            ran.add((found[0].parent_run_id, found[1].num))
            parents.add(found[0].parent_run_id[:8])
        else:
            from_labels.append(run.short_id)
            parents.add(run.tags.get(TAG_PARENT, "")[:8])
        rows = [row for row, overrides_of_row in wanted.items() if matches(overrides_of_row, overrides)]
        matched.update(rows)
        label = found[1].label if found is not None else run.sweep_point or run.name
        cells = [label, "; ".join(_paper_text(paper, ptable, row) for row in rows) or DASH]
        cells += [metric_cell(run, m)[0] for m in metric_names]
        prog = run.last("progress/kimg")
        cells += [f"{fmt_number(prog[1])} kimg" if prog else DASH, _cost_cell(run), f"{run.short_id} ({run.status})"]
        table.add(cells)
    if not children:
        table.header = ["Point", "Paper", "Ours"]
        if not wanted:
            table.add(["(sweep)", DASH, missing(_not_run(name))])
    blank = len(table.header) - 3
    for row, overrides_of_row in wanted.items():
        if row in matched:
            continue
        reason = _unmatched_reason(name, overrides_of_row, submitted, bool(children))
        table.add([" ".join(overrides_of_row) or DASH, _paper_text(paper, ptable, row), missing(reason)]
                  + [DASH] * blank)
    run_ids = {r.run_id for r in children}
    for sweep in sorted(submitted, key=lambda s: s.sweep_dir.name):
        for point in sweep.points:
            if (sweep.parent_run_id, point.num) not in ran and point.run_id not in run_ids and not any(
                    matches(o, list(point.overrides)) for o in wanted.values()):
                table.add([point.label, DASH, missing(f"point {point.num} of sweep {sweep.sweep_dir.name} has no run")]
                          + [DASH] * blank)
    table.notes = ([f"Child runs of parent run(s) {', '.join(sorted(parents - {''}))}; metric cells: value at the run's last "
                    "snapshot."] if children else [])
    table.notes.append(f"A paper row sits beside the run whose point sets the overrides the row names (column "
                       f"`sweep_point` of {PAPER_NUMBERS.name}), read from each point's overrides in the sweep's "
                       "sweep.json (the `sweep.dir` of its MLflow parent run).")
    if from_labels:
        table.notes.append(f"Runs {', '.join(from_labels)}: sweep.json out of reach, overrides read from the point label.")
    table.notes.append("The paper's ablation tables are in the main text, not in the source appendix: the Paper "
                       "column holds only what the appendix states.")
    if any(REDUCED_MARK in c for r in table.rows for c in r):
        table.notes.append(REDUCED_NOTE)
    return table


def _unmatched_reason(name: str, wanted: list[str], submitted: list[SubmittedSweep], any_runs: bool) -> str:
    """Why no run sits beside a paper row: its point did not run, is in no submitted sweep, or no sweep ran."""
    defined = [(s, p) for s in submitted for p in s.points if matches(wanted, list(p.overrides))]
    if not wanted:
        return f"{PAPER_NUMBERS.name} names no sweep point for this row"
    if defined:
        return "; ".join(f"point {p.num} of sweep {s.sweep_dir.name} has no run" for s, p in defined)
    if submitted or any_runs:
        return f"no point of the submitted sweep(s) `{name}` sets {' '.join(wanted)}"
    return _not_run(name)


def _not_run(name: str) -> str:
    return f"sweep not run: no MLflow child runs tagged sweep.name={name} (python -m stylegan_v.train -m +sweep={name})"


LSTM_SWEEP = "lstm_motion"  # sweeps/lstm_motion.yaml: appendix C's comparison of motion codes
FVD128_METRICS = ("fvd2048_128f",)
FVD16_SWEEP_METRICS = ("fvd2048_16f", "fvd256_16f")


def lstm_comparison(paper: PaperNumbers, store: RunStore) -> Table:
    """Appendix C: FVD₁₂₈ of StyleGAN-V with LSTM motion codes (two anchor distances) against ours, one row per
    paper number, each beside the run of the point it names (``sweep_point``), with FVD₁₆ alongside."""
    ptable = f"ablation:{LSTM_SWEEP}"
    sweeps = submitted_sweeps(store)
    submitted = [s for s in sweeps.values() if s.name == LSTM_SWEEP]
    children = sweep_runs(store, sweeps, LSTM_SWEEP)
    table = Table("appendix_c_lstm", "Appendix C. FVD₁₂₈ does not see the motion collapse of LSTM motion codes: "
                  f"paper beside ours — sweep `{LSTM_SWEEP}`",
                  ["Method", "Point", "FVD₁₂₈ (paper)", "FVD₁₂₈ (ours)", "FVD₁₆ (ours)", "run"])
    notes = []
    for row in paper.rows(ptable):
        wanted = paper.sweep_point(ptable, row)
        run = _newest([r for r in children if matches(wanted, run_overrides(r, sweeps, LSTM_SWEEP))])
        if run is None:
            reason = missing(_unmatched_reason(LSTM_SWEEP, wanted, submitted, bool(children)))
            table.add([row, " ".join(wanted), paper.text(ptable, row, "FVD128"), reason, DASH, DASH])
            continue
        cells = []
        for names in (FVD128_METRICS, FVD16_SWEEP_METRICS):
            metric = next((m for m in names if run.last(f"metrics/{m}") or _records(run, m)), names[0])
            cell, note = metric_cell(run, metric)
            cells.append(cell)
            notes += [f"{row}: {note}"] if note else []
        found = run_point(run, sweeps, LSTM_SWEEP)
        label = found[1].label if found is not None else run.sweep_point or " ".join(wanted)
        table.add([row, label, paper.text(ptable, row, "FVD128"), *cells,
                   f"{run.short_id} ({run.status})"])
    table.notes = notes + [
        "The paper gives 196.1 or 165.8 'depending on the distance between anchors' without saying which distance "
        "gave which, nor the dataset: the pairing of those two numbers with our two LSTM points is ours.",
        "Ours: the newest run of each point (matched by its overrides in sweep.json), value at its last snapshot."]
    if any(REDUCED_MARK in c for r in table.rows for c in r):
        table.notes.append(REDUCED_NOTE)
    return table


def ablation_tables(store: RunStore, paper: PaperNumbers) -> list[Table]:
    runs_by_sweep = store.sweeps()
    sweeps = submitted_sweeps(store)
    # every family with paper rows gets its table, so that no paper row is ever silently left out
    in_paper = [t.removeprefix("ablation:") for t in paper.tables() if t.startswith("ablation:")]
    names = list(dict.fromkeys([*ABLATION_FAMILIES, *in_paper, *runs_by_sweep]))
    return [ablation_table(n, sweep_runs(store, sweeps, n), paper, sweeps) for n in names]


def runs_table(store: RunStore) -> Table:
    table = Table("runs", "All training runs in the MLflow experiment (ours)",
                  ["Run", "id", "experiment", "dataset", "model", "sweep point", "status", "progress",
                   "metrics (last snapshot)", "cost"])
    for run in store.finished_training_runs():
        prog = run.last("progress/kimg")
        metrics = "; ".join(f"{m} = {metric_cell(run, m)[0]}" for m in run.metric_names()) or missing("none logged")
        table.add([run.name, run.short_id, run.tags.get("experiment", DASH), run.dataset, run.model,
                   run.sweep_point or DASH, run.status, f"{fmt_number(prog[1])} kimg" if prog else DASH, metrics,
                   _cost_cell(run)])
    if not table.rows:
        table.add([missing(store.reason or "no runs")] + [DASH] * (len(table.header) - 1))
    table.notes = [f"MLflow store {store.uri}, experiment `{store.experiment}`."]
    if any(REDUCED_MARK in c for r in table.rows for c in r):
        table.notes.append(REDUCED_NOTE)
    return table
