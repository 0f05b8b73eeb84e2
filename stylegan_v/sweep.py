"""``python -m stylegan_v.sweep status|collect <sweep dir>``: follow a submitted sweep and gather its table.

``status`` shows every point's state from Slurm accounting (points of a ``cluster=local`` sweep are read
from their run dirs); ``collect`` writes each point's final scores (from training snapshots or ``evaluate``)
and cost into ``results.md``/``.csv``/``.tex`` in the sweep dir, prints the Markdown table, and closes the
sweep's MLflow parent run once every point has ended. The work is done in :mod:`stylegan_v.reports.sweeps`.

Plain argparse, not Hydra: the only input is a folder the sweep already wrote.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stylegan_v.sweep", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="state of every point (Slurm accounting)").add_argument("sweep_dir", type=Path)
    sub.add_parser("collect", help="final scores and cost of every point -> results.md/.csv/.tex"
                   ).add_argument("sweep_dir", type=Path)
    args = parser.parse_args(argv)
    from stylegan_v.reports import sweeps  # pandas, MLflow: after the arguments are checked
    from stylegan_v.reports.tables import to_markdown

    if args.command == "status":
        rows = sweeps.status_rows(args.sweep_dir)
        table = sweeps.as_table([{k: r[k] for k in sweeps.STATUS_COLUMNS} for r in rows], "status",
                                f"Sweep {args.sweep_dir}")
        sys.stdout.write(to_markdown(table))
        print(", ".join(f"{n} {state}" for state, n in sorted(Counter(r["state"] for r in rows).items())))
    else:
        rows = sweeps.collect_rows(args.sweep_dir)
        sys.stdout.write(to_markdown(sweeps.write_results(args.sweep_dir, rows)))
        closed = sweeps.close_parent(args.sweep_dir, rows)
        if closed:
            print(f"parent MLflow run closed as {closed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
