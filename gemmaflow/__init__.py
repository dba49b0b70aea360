"""gemmaflow: raw text to training-ready data for Gemma-style models, and a JAX Gemma trainer.

The rooms (`pipeline`, `classifiers`, `tokenizer_train`, `model`) are folders at the top of the
repository, installed as subpackages of this one (setup.py maps them), so an installed gemmaflow
adds a single name to site-packages. In a source checkout they sit beside this folder rather than
inside it; adding the checkout to this package's search path lets `gemmaflow.pipeline` and the
others resolve there too, so tests and `python -m gemmaflow.cli` run from a checkout as they do
from an install.
"""

from pathlib import Path

_HERE = Path(__file__).resolve().parent
if not (_HERE / "pipeline").is_dir() and (_HERE.parent / "pipeline" / "__init__.py").is_file():
    __path__.append(str(_HERE.parent))
