"""`gemmaflow prefs`: preference pairs -> two Gemma chat sequences per pair, with loss masks, in pair shards.

    files -> ParseExamples(pairs) (dead letters: malformed records; rejected: pairs that teach nothing)
          -> the registry's prefs stages (classify, exact dedupe, PII: the curate stages, with their counters)
          -> FormatPairs -> WritePairShards; every rejected pair -> [ScrubRejected] -> rejected/
    after the run: shard names, manifest.json (kind "preference"), stats.json, the completion marker
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam

from gemmaflow.pipeline.jobs.sft import build_chat_graph, run_chat_job
from gemmaflow.pipeline.pack_config import PrefsConfig
from gemmaflow.pipeline.registry import PREFS, REGISTRY, StageRegistry, chain_names
from gemmaflow.pipeline.stages.prefs import FormatPairs, WritePairShards
from gemmaflow.pipeline.stages.sft import SourceFile

SOURCE = "read"
SINK = "format"
KIND = "preference"


def prefs_chain(config: PrefsConfig, registry: StageRegistry = REGISTRY) -> tuple[str, ...]:
    """The stage names a prefs run with `config` goes through (for the accounting check and dry runs)."""
    return chain_names(SOURCE, registry.chain(PREFS, config), SINK)


def build_prefs(pipeline: beam.Pipeline, files: list[SourceFile], tokenizer_path: str, output: str,
                config: PrefsConfig, registry: StageRegistry = REGISTRY) -> tuple[str, ...]:
    """Add the prefs graph to `pipeline`; nothing runs until the pipeline does. Returns the chain."""
    stages = registry.chain(PREFS, config)
    build_chat_graph(pipeline, files, output, config, stages, pairs=True,
                     format_step=FormatPairs(tokenizer_path, config), write_step=WritePairShards(output, config))
    return chain_names(SOURCE, stages, SINK)


def run_prefs(
    inputs: list[str],
    tokenizer_path: str,
    output: str,
    config: PrefsConfig,
    beam_args: list[str] | None = None,
    overwrite: bool = False,
    echo: bool = True,
    progress: bool = True,
    registry: StageRegistry = REGISTRY,
) -> dict[str, Any]:
    """Parse, clean and format preference pairs into pair shards + manifest.json; returns the manifest."""
    return run_chat_job(
        PREFS, KIND, {PREFS: inputs}, tokenizer_path, output, config,
        lambda pipeline, files, _pad_id: build_prefs(pipeline, files, tokenizer_path, output, config, registry),
        beam_args, overwrite, echo, progress, registry)
