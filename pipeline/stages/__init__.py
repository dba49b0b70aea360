"""Composite Beam PTransforms, one module per stage family; per-document logic lives one level up."""
