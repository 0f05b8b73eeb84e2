"""Pieces of the report: the paper numbers file, Table 4's protocol variants, Figure 9's curves, the config."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

from stylegan_v.cli import CONF_DIR
from stylegan_v.metrics.fvd import FVDProtocol
from stylegan_v.models.periods import scheme_cycle_length
from stylegan_v.reports.config import ReportConfig
from stylegan_v.reports.embeddings import acyclic_parts
from stylegan_v.reports.paper import PaperNumbers
from stylegan_v.reports.paper_tables import table4_variant
from stylegan_v.reports.tables import Table, fmt_number, latex_escape, to_latex

PROPER = asdict(FVDProtocol())  # the official protocol, as records carry it


def test_paper_numbers_transcription() -> None:
    paper = PaperNumbers()
    assert paper.text("table4", "Proper computation", "FF") == "76.82 ± 1.57"
    assert paper.text("table4", "Still real images", "ST") == "166.8"
    assert paper.text("table5", "Real videos", "IS") == "97.23 ± 0.38"
    assert paper.text("table6", "StyleGAN-V (ours)", "FID") == "9.445"
    assert paper.text("table6", "StyleGAN2 [29]", "FVD16") == "N/A"
    assert paper.text("table7", "MEAD [73]", "#hours") == "36.11"
    assert len(paper.rows("table4")) == 7 and len(paper.rows("table5")) == 7 and len(paper.rows("table6")) == 7
    assert len(paper.rows("table7")) == 5
    assert all(c.source for c in paper.cells), "every number names where it comes from"


@pytest.mark.parametrize("switch,row", [
    ({}, "Proper computation"), ({"pre_resize": 128}, "When resized to 128^2"),
    ({"fake_jpeg_quality": 75}, "With jpg/png discrepancy"), ({"real_selection": "all"}, "When using all clips per video"),
    ({"real_selection": "first"}, "When using only first frames"), ({"subsample": 8}, "When using subsampling of s = 8"),
    ({"real_selection": "still"}, "Still real images"), ({"pre_resize": 128, "subsample": 8}, None),
    ({"fake_jpeg_quality": 95}, None), ({"resize_mode": "tf1"}, None), ({"video_selection": "random"}, None),
])
def test_table4_variant_from_protocol(switch, row) -> None:
    assert table4_variant({**PROPER, **switch}) == row


def test_figure9_parts_come_from_the_model() -> None:
    parts = acyclic_parts(64, waves=3, code_distance=16, seed=0)
    at_anchor = torch.isin(parts.t, parts.anchors)
    assert at_anchor.sum() == 5
    assert parts.stitched[at_anchor].abs().max() < 1e-5, "(e) vanishes at every anchor"
    assert parts.raw[at_anchor].abs().max() > 1e-2, "(d) does not"
    assert not torch.allclose(parts.ours, parts.stitched), "(f) adds the aligners"
    assert parts.cycle_length_init == 352, "(d)-(f) take the linear scaling of (c)"
    assert scheme_cycle_length("exponential", 5) == 64


def test_figure9_panels_have_the_captions_cycles_and_no_aliasing() -> None:
    """(a) 64, (b) 120, (c) 352 frames as captioned, from the model's own period code; no period under the
    aliasing bound of appendix B.3; (b) the first such seed; (c) and (f) one scaling; seed and ω in the titles."""
    import matplotlib

    matplotlib.use("Agg")
    from stylegan_v.models.periods import init_periods
    from stylegan_v.reports.embeddings import ACYCLIC_SCALING, ALIASING_BOUND, FIGURE9_PANELS, small_motion_config
    from stylegan_v.reports.figures import figure9

    paper = PaperNumbers()

    def cycle(panel, **change) -> int:
        p = {"omega_min": panel.omega_min, "omega_max": panel.omega_max, "random_xi": panel.random_xi,
             "random_seed": panel.random_seed, **change}
        return scheme_cycle_length(panel.scheme, panel.waves, **p)

    def shortest(panel, **change) -> float:
        p = {"omega_min": panel.omega_min, "omega_max": panel.omega_max, "random_xi": panel.random_xi,
             "random_seed": panel.random_seed, **change}
        return float(init_periods(panel.scheme, panel.waves, **p).min())

    for panel, row in zip(FIGURE9_PANELS, paper.rows("figure9")):
        assert row.startswith(f"({panel.letter}) ") and f"d = {panel.waves}" in row
        assert cycle(panel) == int(paper.get("figure9", row, "cycle length").value), row
        assert shortest(panel) >= ALIASING_BOUND, f"{row}: a period under {ALIASING_BOUND} frames aliases"
    a, b, c = FIGURE9_PANELS
    assert not [s for s in range(b.random_seed) if cycle(b, random_seed=s) == 120
                and shortest(b, random_seed=s) >= ALIASING_BOUND], "(b) is the first seed with the caption's cycle"
    assert all(cycle(c, omega_min=float(w), omega_max=1024.0) != 352 for w in range(4, 1024)), \
        "with the paper's omega_max no omega_min gives the caption's 352"
    assert ACYCLIC_SCALING is c
    motion = small_motion_config(3, 16)
    assert (motion.period_scheme.value, motion.omega_min, motion.omega_max) == ("linear", c.omega_min, c.omega_max)
    fig, cycles = figure9(64, 16, seed=5)
    titles = [ax.get_title() for ax in fig.axes]
    assert "seed 106" in titles[1] and "ω_min = 11, ω_max = 43" in titles[2] and "cycle length = 352" in titles[2]
    assert all("seed 5" in t and "ω_min = 11, ω_max = 43" in t for t in titles[3:])
    assert cycles == {"exponential": 64, "random": 120, "linear": 352, "acyclic_init_lcm": 352}


def test_formatting_and_latex() -> None:
    assert fmt_number(3614.622390017133) == "3615" and fmt_number(76.8234) == "76.82" and fmt_number(8.77e-6) == "8.770e-06"
    assert latex_escape("FVD₁₆ 76.82 ± 1.57 — 50% #a_b") == r"FVD$_{16}$ 76.82 $\pm$ 1.57 --- 50\% \#a\_b"
    assert latex_escape("FVD₁₂₈") == r"FVD$_{128}$"
    tex = to_latex(Table("t", "T", ["a", "b"], [["1", "2"]], ["note"]))
    assert r"\begin{tabular}{lr}" in tex and r"1 & 2 \\" in tex


def test_report_config_validates() -> None:
    with pytest.raises(ValueError, match="report.figure_formats"):
        ReportConfig(figure_formats=["gif"])
    with pytest.raises(ValueError, match="report.fig9_frames"):
        ReportConfig(fig9_frames=4)


def test_report_group_composes(compose, tmp_path) -> None:
    """``+report=default`` once the root schema has a ``report`` key (the lead adds it with the defaults entry)."""
    import dataclasses

    from stylegan_v.configs import RootConfig
    from stylegan_v.report import report_config

    if "report" not in {f.name for f in dataclasses.fields(RootConfig)}:
        pytest.skip("RootConfig has no `report` field yet: `+report=default` cannot compose until the lead adds it")
    cfg = compose("+report=default", f"paths.data_dir={tmp_path}", "tracking.experiment=other")
    rcfg = report_config(cfg)
    assert rcfg.stats_dir == f"{tmp_path}/stats" and rcfg.experiment == "other" and rcfg.out_dir == "reports"


def test_report_defaults_follow_the_run_config(compose, tmp_path) -> None:
    from stylegan_v.report import report_config

    cfg = compose(f"paths.data_dir={tmp_path}", "tracking.tracking_uri=sqlite:///x.db", "tracking.experiment=other")
    rcfg = report_config(cfg)
    assert (rcfg.tracking_uri, rcfg.experiment, rcfg.stats_dir) == ("sqlite:///x.db", "other", f"{tmp_path}/stats")


def test_figure10_panels_in_the_papers_order() -> None:
    """(a) FaceForensics, (b) SkyTimelapse, (c) UCF-101, (d) RainbowJelly, (e) MEAD, then ours by name; the
    names are those the paper datasets' configs give."""
    import matplotlib

    matplotlib.use("Agg")
    from stylegan_v.reports.figures import FIGURE10_ORDER, figure10

    config_names = {}
    for name in FIGURE10_ORDER:
        text = (CONF_DIR / "dataset" / f"{name}.yaml").read_text()
        config_names[name] = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("name:"))
    assert list(config_names.values()) == list(FIGURE10_ORDER)
    stats = {name: {"num_videos": 2, "fps": 25, "length_histogram": {"bin_edges_frames": [0, 10, 20], "counts": [1, 1]}}
             for name in ["ucf101", "moving_mnist_32", "mead", "faceforensics", "sample_videos", "sky_timelapse"]}
    titles = [ax.get_title().split(":")[0] for ax in figure10(stats, None).axes]
    assert titles == ["(a) faceforensics", "(b) sky_timelapse", "(c) ucf101", "(e) mead", "moving_mnist_32",
                      "sample_videos"], "the paper's letter stays with its dataset when one is absent"

