"""The bundled sample is exactly what scripts/make_sample_corpus.py builds from scripts/sample_corpus/.

The demo's figures and the pipeline tests are measured on gemmaflow/sample/, so a change to the
generator or to its data files must show up here until the sample is regenerated and committed.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import subprocess
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "gemmaflow" / "sample"
GENERATOR = ROOT / "scripts" / "make_sample_corpus.py"


def bundled_zlib() -> str:
    """The zlib version the bundled sample was compressed with, as its README.md records it."""
    match = re.search(r"and zlib\s+(\S+):", (BUNDLED / "README.md").read_text(encoding="utf-8"))
    assert match, "README.md no longer records the zlib version"
    return match.group(1)


def digests(folder: Path, exact: bool) -> dict[str, str]:
    """sha256 of every file in `folder`. Unless `exact`, only of what zlib does not decide: the content of
    the .gz files, and README.md without the zlib version and the compressed sizes it records."""
    found = {}
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        data = path.read_bytes()
        if not exact and path.suffix == ".gz":
            data = gzip.decompress(data)
        elif not exact and path.name == "README.md":
            text = re.sub(r"zlib\s+\S+:", "zlib ?:", data.decode("utf-8"))
            data = re.sub(r"\| (\w+\.jsonl\.gz) \| [\d,]+ \|", r"| \1 | ? |", text).encode("utf-8")
        found[path.name] = hashlib.sha256(data).hexdigest()
    return found


def test_generator_rebuilds_the_bundled_sample(tmp_path: Path) -> None:
    """Byte for byte with the zlib the sample was built with; with another zlib (whose compressed bytes
    may differ for the same input), the uncompressed content must still be identical."""
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(tmp_path)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": pythonpath}, check=True, capture_output=True,
    )  # fmt: skip
    exact = bundled_zlib() == zlib.ZLIB_RUNTIME_VERSION
    assert digests(tmp_path, exact) == digests(BUNDLED, exact), (
        "gemmaflow/sample/ is not what scripts/make_sample_corpus.py builds: after an intended change to the "
        "generator or scripts/sample_corpus/, regenerate the sample and commit it"
    )
