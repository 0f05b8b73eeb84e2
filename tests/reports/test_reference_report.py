"""The committed reference report (``reports/``) is exactly what the locked ``report`` stage wrote.

``dvc.lock`` records the hash of each of the stage's outputs (``cache: false``, so the files live in git); DVC's
own comparison of the workspace against those hashes must find nothing changed, or a hand edit, a partial commit
or a report built from other inputs slipped in. Rebuilding it needs the reference run's MLflow store, which is
not committed: ``make check-report`` does that after a ``make repro`` (tests/reports/test_report_build.py checks
the same inputs give the same bytes).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stylegan_v.reports.reference import main as compare_main

REPO = Path(__file__).resolve().parents[2]


def _changed_report_outs(root: Path) -> dict[str, str]:
    """{out path: how it differs from dvc.lock} for the report stage of the repository at ``root``, as
    ``dvc status`` reports it (the stage's inputs, which are not committed, show as changed deps: ignored)."""
    dvc = Path(sys.executable).with_name("dvc")
    result = subprocess.run([str(dvc), "status", "--json", "report"], cwd=root, capture_output=True, text=True,
                            check=True, timeout=120)
    entries = json.loads(result.stdout or "{}").get("report", [])
    return {path: state for entry in entries if isinstance(entry, dict)
            for path, state in entry.get("changed outs", {}).items()}


def test_committed_report_matches_the_lock() -> None:
    lock = yaml.safe_load((REPO / "dvc.lock").read_text())
    assert {out["path"] for out in lock["stages"]["report"]["outs"]} == \
        {"reports/tables", "reports/figures", "reports/README.md"}
    changed = _changed_report_outs(REPO)
    assert changed == {}, f"reports/ is not what the locked report stage wrote: {changed}"
    tracked = subprocess.run(["git", "ls-files", "reports"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
    assert "reports/README.md" in tracked and any(p.startswith("reports/figures/") for p in tracked), \
        "the reference report is committed"


def test_a_changed_report_file_is_caught(tmp_path: Path) -> None:
    """The check above can fail: the same comparison on a copy with one table cell changed."""
    copy = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(copy)], check=True)
    for tracked in ("dvc.yaml", "dvc.lock", "params.yaml"):  # the working tree's, as the first test reads them
        shutil.copy2(REPO / tracked, copy / tracked)
    shutil.rmtree(copy / "reports")
    shutil.copytree(REPO / "reports", copy / "reports")
    table = next(p for p in sorted((copy / "reports" / "tables").glob("*.md")))
    table.write_text(table.read_text() + "| edited |\n")
    assert _changed_report_outs(copy) == {"reports/tables": "modified"}


def test_readme_links_into_the_committed_report() -> None:
    links = set(re.findall(r"\((reports/[^)#\s]+)\)", (REPO / "README.md").read_text()))
    assert links, "the README shows the committed report"
    missing = sorted(link for link in links if not (REPO / link).exists())
    assert not missing, f"README links to report files that are not committed: {missing}"


def test_compare_cli_reports_differences(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rebuilt = tmp_path / "rebuilt"
    shutil.copytree(REPO / "reports", rebuilt, ignore=shutil.ignore_patterns(".gitignore"))
    assert compare_main([str(REPO / "reports"), str(rebuilt)]) == 0
    readme = rebuilt / "README.md"
    readme.write_text(readme.read_text().replace("StyleGAN-V", "StyleGAN-W", 1))
    assert compare_main([str(REPO / "reports"), str(rebuilt)]) == 1
    out = capsys.readouterr().out
    assert "README.md: line 1 differs" in out and "1 differ" in out
    with pytest.raises(SystemExit):
        compare_main([str(REPO / "reports"), str(tmp_path / "nothing")])
