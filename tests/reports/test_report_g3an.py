"""The report's G3AN section: appendix Table 1 read from the built generators, and the C.1-C.4 grids of a real
(tiny) G3AN training run in a sqlite MLflow store, the same bytes on a rebuild."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import open_dict
from PIL import Image
from tiny_config import TINY_G3AN

from stylegan_v import report, train
from stylegan_v.models.config import G3ANConfig, to_model_config
from stylegan_v.models.registry import build_models
from stylegan_v.reports.g3an_grids import grids
from stylegan_v.reports.g3an_table import ROWS, table1
from stylegan_v.reports.paper import PaperNumbers

# G3AN appendix Table 1, (C, H×W×T) after G^3_0 ... G^3_4, then the output
APPENDIX = [("1024", "4×4×2"), ("512", "8×8×4"), ("256", "16×16×8"), ("128", "32×32×16"), ("64", "64×64×16"),
            ("3", "64×64×16")]
# the public code's generator: G_V is h_s ++ (h_v + h_t), twice the module's 8, 8, 4, 2, 1 x 64 channels, and
# its first module makes 4 frames from z_m's single step
PUBLIC_CODE = [("1024", "4×4×4"), ("1024", "8×8×8"), ("512", "16×16×16"), ("256", "32×32×16"), ("128", "64×64×16"),
               ("3", "64×64×16")]
GRIDS = ("g3an_c1", "g3an_c3_appearance", "g3an_c3_motion", "g3an_c4")


def test_table1_is_read_from_the_built_generators(compose) -> None:
    """The appendix generator has Table 1's sizes exactly; the public code's (the default) differs where its rows
    say so, and the paper's values come from paper_numbers.csv."""
    assert to_model_config(compose("experiment=smoke", "+sweep/baselines=g3an").model) == G3ANConfig(), \
        "the table's code column is the default model=g3an"
    paper = PaperNumbers()
    assert [(paper.text("g3an_table1", r, "C"), paper.text("g3an_table1", r, "H×W×T")) for r in ROWS] == APPENDIX
    table = table1(paper)
    assert table.header[3:7] == ["C (code)", "H×W×T (code)", "C (appendix)", "H×W×T (appendix)"]
    assert [row[0] for row in table.rows] == list(ROWS)
    assert [tuple(row[1:3]) for row in table.rows] == APPENDIX
    assert [tuple(row[3:5]) for row in table.rows] == PUBLIC_CODE
    assert [tuple(row[5:7]) for row in table.rows] == APPENDIX
    verdicts = [row[7] for row in table.rows]
    assert verdicts[0] == "code H×W×T 4×4×4 ≠ 4×4×2"
    assert verdicts[1] == "code C 1024 ≠ 512; code H×W×T 8×8×8 ≠ 8×8×4"
    assert verdicts[3] == "code C 256 ≠ 128" and verdicts[5] == "equal"
    assert not any("appendix" in v for v in verdicts)


def test_report_without_a_g3an_run_says_so(tmp_path, compose) -> None:
    cfg = compose(f"paths.data_dir={tmp_path / 'nodata'}", f"tracking.tracking_uri=sqlite:///{tmp_path / 'none.db'}")
    with open_dict(cfg):
        cfg.report = {"out_dir": str(tmp_path / "reports"), "fig9_frames": 64, "figure_formats": ["png"]}
    result = report.run(cfg)
    section = (tmp_path / "reports" / "README.md").read_text().split("## G3AN", 1)[1]
    assert "| G^3_0 | 1024 | 4×4×2 | 1024 | 4×4×4 | 1024 | 4×4×2 |" in section
    assert "[md](tables/g3an_table1.md)" in section
    assert "C.1–C.4 grids: none, no G3AN run in the MLflow store (no MLflow store at" in section
    assert "![" not in section and not list((tmp_path / "reports" / "figures").glob("g3an*"))
    assert "g3an_table1" in result["tables"] and (tmp_path / "reports" / "tables" / "g3an_table1.tex").exists()


def test_grids_of_a_conditional_g3an() -> None:
    """C.2 for a conditional model: two z_m per class, the classes in order; C.4 names the classes."""
    torch.manual_seed(0)
    G, _ = build_models(G3ANConfig(base_channels=16, za_dim=4, zm_dim=2, num_classes=3, attention_after=1), 64, 16)
    made, skipped = grids(G.eval(), Path("checkpoint.pt"), seed=0)
    by_key = {g.key: g for g in made}
    assert list(by_key) == ["g3an_c1", "g3an_c2", *GRIDS[1:]] and skipped == []
    c2 = by_key["g3an_c2"]
    assert c2.frames.shape == (6, 16, 3, 64, 64) and c2.frames.dtype == torch.uint8
    assert c2.rows == [f"class {k}, $z_m$ {i}" for k in range(3) for i in (1, 2)]
    assert by_key["g3an_c4"].rows[2] == "$z_{a0}$, $z_{m1}$, $c_1$"
    assert by_key["g3an_c3_motion"].frames.shape[0] == 7  # generate's default values -3 ... 3
    for grid in made:  # every row is another video: another z_m, class, or swept value
        assert all(not torch.equal(grid.frames[i], grid.frames[j]) for i in range(len(grid.rows)) for j in range(i)), \
            grid.key
    again, _ = grids(G, Path("checkpoint.pt"), seed=0)
    assert all(torch.equal(a.frames, b.frames) for a, b in zip(made, again)), "a fixed seed gives the same frames"


def test_report_renders_c1_to_c4_of_a_g3an_run(tmp_path, compose) -> None:
    """One tiny G3AN training run (two steps), then two report builds: the grids exist and are the same bytes."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = compose("experiment=smoke", "+sweep/baselines=g3an", *TINY_G3AN, f"paths.data_dir={tmp_path / 'data'}",
                  f"paths.runs_dir={tmp_path / 'runs'}", f"tracking.tracking_uri={uri}", "tracking.artifacts=false",
                  "dataset.name=mnist_g3an", "dataset.num_videos=8", "dataset.video_length=48",
                  "training.batch_size=2", "training.num_workers=0", "training.max_steps=2",
                  "training.sample_grid=[1,2]")
    assert train.run(cfg)["status"] == "finished"

    def build(out: Path) -> dict:
        built = cfg.copy()
        with open_dict(built):
            built.report = {"out_dir": str(out), "fig9_frames": 64, "figure_formats": ["png"]}
        return report.run(built)

    first, second = tmp_path / "first", tmp_path / "second"
    result = build(first)
    assert set(GRIDS) <= set(result["figures"]) and "g3an_c2" not in result["figures"]
    section = (first / "README.md").read_text().split("## G3AN", 1)[1]
    assert "C.2 (conditional generation): skipped, the model is unconditional" in section
    for key in GRIDS:
        png = first / "figures" / f"{key}.png"
        with Image.open(png) as img:
            assert img.width > 300 and img.height > 100
        assert f"![{key}](figures/{key}.png)" in section
    assert "G3AN run `" in section and "checkpoint-" in section
    build(second)
    for key in GRIDS:
        assert (first / "figures" / f"{key}.png").read_bytes() == (second / "figures" / f"{key}.png").read_bytes()
    assert (first / "README.md").read_bytes() == (second / "README.md").read_bytes()
