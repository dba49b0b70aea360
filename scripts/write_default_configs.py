"""Regenerate configs/*.yaml from the config dataclasses' defaults (a test keeps them in sync).

    python scripts/write_default_configs.py
"""

from __future__ import annotations

from pathlib import Path

import yaml

from gemmaflow.core.configio import to_dict
from gemmaflow.pipeline.config import CurateConfig

HEADER = """\
# gemmaflow curate: the default configuration, spelled out.
# Copy this file, change what you need and pass it with --config; omitted keys take these defaults,
# unknown keys fail the run before any data is read. Thresholds and their sources are documented
# on the dataclasses in pipeline/config.py and pipeline/heuristics/config.py.
"""


def main() -> None:
    configs = Path(__file__).resolve().parents[1] / "configs"
    body = yaml.safe_dump(to_dict(CurateConfig()), sort_keys=False, width=100, default_flow_style=None)
    (configs / "curate.yaml").write_text(HEADER + body, encoding="utf-8")


if __name__ == "__main__":
    main()
