"""PII detection and replacement on presidio: `pipeline.pii.scrubber.PiiScrubber` is the entry point.

This package file imports nothing so the config can read `pipeline.pii.entities` without presidio.
"""
