"""The sdist is what Dataflow workers install (--setup_file): it must carry configs and bundled data."""

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.mark.slow
def test_sdist_contains_configs_sample_and_all_rooms(tmp_path):
    subprocess.run(
        [sys.executable, "setup.py", "-q", "sdist", "--dist-dir", str(tmp_path)],
        cwd=ROOT, check=True, capture_output=True,
    )
    (archive,) = tmp_path.glob("gemmaflow-*.tar.gz")
    with tarfile.open(archive) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    expected = {
        "setup.py",
        "README.md",
        "configs/curate.yaml",
        "gemmaflow/sample/raw.jsonl.gz",
        "pipeline/jobs/curate.py",
        "pipeline/registry.py",
        "pipeline/heuristics/apply.py",
        "classifiers/__init__.py",
        "classifiers/models/safety.npz",
        "classifiers/models/safety-LICENSE.txt",
        "tokenizer_train/__init__.py",
        "model/__init__.py",
    }
    assert expected <= names, sorted(expected - names)
