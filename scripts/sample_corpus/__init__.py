"""The inputs of scripts/make_sample_corpus.py and the modules that turn them into the bundled sample.

The texts live in files next to these modules (see README.md here), so the generator reads nothing
from the interpreter that runs it: the same files and seed give the same sample on any Python.
"""
