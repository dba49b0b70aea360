"""Curation on Apache Beam: readers, normalisation, language ID, heuristics, dedupe, writers, stats."""
