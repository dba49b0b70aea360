"""The gemmaflow command and the small utilities every room shares (typed config loading)."""
