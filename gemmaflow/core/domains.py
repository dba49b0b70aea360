"""The document domains: the one list the record schema, configs, heuristics and benchmarks check against.

Every curated document is labelled with one of these (docs/record-schema.md); the heuristics pick
their rule sets by it, the classifiers' domain model predicts it and packing mixes by it.
"""

from __future__ import annotations

from typing import Literal, get_args

Domain = Literal["web", "code", "math"]
DOMAINS: tuple[Domain, ...] = get_args(Domain)
