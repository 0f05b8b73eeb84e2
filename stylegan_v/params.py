"""``python -m stylegan_v.params [override ...]``: write params.yaml, the composed config `dvc repro` runs.

DVC composes ``conf/pipeline.yaml`` itself on ``dvc exp run -S …``; plain ``dvc repro`` reads params.yaml as it
is. This command composes it with DVC's own function (same search path, same plugins), so both ways agree;
``make repro`` runs it before ``dvc repro``, and a test keeps the committed params.yaml equal to ``conf/``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def write_params(overrides: list[str], out: Path = REPO / "params.yaml") -> Path:
    from dvc.utils.hydra import compose_and_dump

    compose_and_dump(out, str(REPO / "conf"), None, "pipeline", str(REPO), overrides)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stylegan_v.params", description=__doc__.split("\n")[0])
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="overrides of conf/pipeline.yaml, as `dvc exp run -S key=value` takes them")
    args = parser.parse_args(argv)
    from stylegan_v.cli import CONFIG_ERRORS, one_line

    try:
        print(write_params(args.overrides))
    except CONFIG_ERRORS as err:
        parser.exit(2, f"error: {one_line(err)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
