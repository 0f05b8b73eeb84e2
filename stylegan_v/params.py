"""``python -m stylegan_v.params [override ...]``: write params.yaml, the composed config `dvc repro` runs.

DVC composes ``conf/pipeline.yaml`` itself on ``dvc exp run -S …``; plain ``dvc repro`` reads params.yaml as it
is. This command composes it with DVC's own function (same search path, same plugins), so both ways agree;
``make repro`` runs it before ``dvc repro``, and a test keeps the committed params.yaml equal to ``conf/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def write_params(overrides: list[str], out: Path = REPO / "params.yaml") -> Path:
    from dvc.utils.hydra import compose_and_dump

    compose_and_dump(out, str(REPO / "conf"), None, "pipeline", str(REPO), overrides)
    return out


if __name__ == "__main__":
    print(write_params(sys.argv[1:]))
