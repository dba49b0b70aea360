from __future__ import annotations

from pathlib import Path

import pytest

from tests.classifiers.synthetic import train_small


@pytest.fixture(scope="session")
def domain_model(tmp_path_factory) -> Path:
    return train_small(tmp_path_factory.mktemp("domain"), "domain", ["web", "code", "math"])


@pytest.fixture(scope="session")
def quality_model(tmp_path_factory) -> Path:
    return train_small(tmp_path_factory.mktemp("quality"), "quality", ["good", "junk"],
                       positive_label="good", min_recall=0.9)  # fmt: skip
