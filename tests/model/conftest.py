"""Model tests run on the host CPU: the results, tolerances and timings here assume it."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
