"""The committed reference report against a rebuild of it: equal up to MLflow run ids and timestamps.

``reports/`` (tables, figures, README) is committed as the ``report`` stage's outputs of the reference
``make repro`` run (``cache: false`` outs, so ``dvc.lock`` holds their hashes and ``dvc status`` stays clean).
A rebuild from the same inputs on another machine, or after a fresh training, gets new MLflow run ids and
new sweep-folder times; everything else must be the same bytes: text files after :func:`normalize`, figures
exactly (the report writes PNG/PDF without version or time metadata).
"""

from __future__ import annotations

import re
from pathlib import Path

TEXT_SUFFIXES = (".md", ".csv", ".tex")
PARTS = ("tables", "figures", "README.md")  # what the report stage writes under its out_dir

_PATTERNS = (
    # MLflow run ids, whole (32 hex) or as the report prints them (8 hex); not part of a longer word or name
    (re.compile(r"(?<![0-9A-Za-z_.-])[0-9a-f]{32}(?![0-9A-Za-z])"), "<run-id>"),
    (re.compile(r"(?<![0-9A-Za-z_.-])[0-9a-f]{8}(?![0-9A-Za-z])"), "<run-id>"),
    # times: ISO dates with a clock, and the YYYYmmdd-HHMMSS of sweep folders
    (re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?( ?UTC|Z)?"), "<time>"),
    (re.compile(r"(?<!\d)\d{8}-\d{6}(?!\d)"), "<time>"),
)


def normalize(text: str) -> str:
    """``text`` with every run id and timestamp replaced by a placeholder."""
    for pattern, placeholder in _PATTERNS:
        text = pattern.sub(placeholder, text)
    return text


def report_files(out_dir: Path) -> dict[str, Path]:
    """Every file the report stage wrote under ``out_dir``, by path relative to it."""
    files: dict[str, Path] = {}
    for part in PARTS:
        path = out_dir / part
        if path.is_file():
            files[part] = path
        elif path.is_dir():
            files.update({p.relative_to(out_dir).as_posix(): p for p in sorted(path.rglob("*")) if p.is_file()})
    return files


def compare_reports(reference: Path, rebuilt: Path) -> list[str]:
    """One line per difference between two report folders (files only in one, text that differs after
    :func:`normalize` with its first differing line, figures that differ in any byte); [] when equal."""
    ref, new = report_files(reference), report_files(rebuilt)
    diffs = [f"{name}: only in {reference}" for name in sorted(set(ref) - set(new))]
    diffs += [f"{name}: only in {rebuilt}" for name in sorted(set(new) - set(ref))]
    for name in sorted(set(ref) & set(new)):
        if Path(name).suffix in TEXT_SUFFIXES:
            a = normalize(ref[name].read_text()).splitlines()
            b = normalize(new[name].read_text()).splitlines()
            if a != b:
                line = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
                diffs.append(f"{name}: line {line + 1} differs: {a[line] if line < len(a) else '<end>'!r} "
                             f"vs {b[line] if line < len(b) else '<end>'!r}")
        elif ref[name].read_bytes() != new[name].read_bytes():
            diffs.append(f"{name}: figure bytes differ")
    return diffs


def main(argv: list[str] | None = None) -> int:
    """``python -m stylegan_v.reports.reference REFERENCE REBUILT``: print each difference, exit 1 if any.

    ``make check-report`` rebuilds the report from this workspace's inputs (the MLflow store and statistics
    a ``make repro`` left) into a temporary folder and compares it with the committed ``reports/`` this way.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m stylegan_v.reports.reference", description=main.__doc__)
    parser.add_argument("reference", type=Path, help="the committed report folder (reports)")
    parser.add_argument("rebuilt", type=Path, help="a report built again from the same inputs")
    args = parser.parse_args(argv)
    for folder in (args.reference, args.rebuilt):
        if not (folder / "README.md").is_file():
            parser.error(f"{folder} holds no report (no README.md)")
    diffs = compare_reports(args.reference, args.rebuilt)
    for line in diffs:
        print(line)
    print(f"{len(report_files(args.reference))} files compared: "
          + ("equal up to run ids and times" if not diffs else f"{len(diffs)} differ"))
    return 1 if diffs else 0


if __name__ == "__main__":
    raise SystemExit(main())
