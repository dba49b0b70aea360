"""Bundled sample corpus (package data); see README.md."""
