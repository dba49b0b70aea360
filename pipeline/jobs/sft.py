"""`gemmaflow sft`: dolly/chat JSONL from one or more sources -> Gemma chat turns packed with loss masks into shards.

    each source's files -> ParseExamples (dead letters: malformed records) -> the registry's sft stages
          (classify, exact dedupe, prompt dedupe, decontaminate, PII: the curate stages, with their counters,
          over every source at once) -> FormatChat -> ApplyMixture (pack's, over sources)
          -> PackAndWriteShards; every rejected example -> [ScrubRejected] -> rejected/
    after the run: stats.json with per-source counts, shard names, manifest.json (kind "sft", tokens per
    category, the mixture plan and per-source counts), the completion marker
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from gemmaflow.core.configio import ConfigError, fingerprint
from gemmaflow.pipeline.jobs.beam_job import BeamJob, JobResult, run_beam_job
from gemmaflow.pipeline.jobs.pack import finalise_shards, read_plan
from gemmaflow.pipeline.pack_config import SftConfig
from gemmaflow.pipeline.records import REJECTED_SCHEMA
from gemmaflow.pipeline.registry import REGISTRY, SFT, StageRegistry, StageSpec, apply_chain, chain_names
from gemmaflow.pipeline.run_output import write_counts
from gemmaflow.pipeline.sft import ChatTokens
from gemmaflow.pipeline.spill import SPILL_DIR
from gemmaflow.pipeline.stages.base import DEAD, KEPT, REJECTED, STATS
from gemmaflow.pipeline.stages.pack import ApplyMixture, PackAndWriteShards, read_bytes, write_sinks
from gemmaflow.pipeline.stages.pii import ScrubRejected
from gemmaflow.pipeline.stages.read import match_inputs
from gemmaflow.pipeline.stages.sft import FormatChat, ParseExamples, SourceFile, sink_row
from gemmaflow.pipeline.stats import StageCounts
from gemmaflow.pipeline.tokenize import load_processor, tokenizer_info

SOURCE = "read"
SINK = "format"
MIXTURE = "mixture"


def sft_chain(config: SftConfig, registry: StageRegistry = REGISTRY) -> tuple[str, ...]:
    """The stage names an sft run with `config` goes through (for the accounting check and dry runs)."""
    return (*chain_names(SOURCE, registry.chain(SFT, config), SINK), MIXTURE)


def match_sources(sources: Mapping[str, Sequence[str]]) -> list[SourceFile]:
    """Every file each source's globs match, with the source's name. A file two sources match is refused:
    its examples would be read twice, under two weights."""
    owner: dict[str, str] = {}
    for name, globs in sources.items():
        for path in match_inputs(list(globs)):
            if owner.setdefault(path, name) != name:
                raise ConfigError(f"sources {owner[path]} and {name} both match {path}")
    return sorted((name, path) for path, name in owner.items())


def build_chat_graph(pipeline: beam.Pipeline, files: list[SourceFile], output: str, config: Any,
                     stages: Sequence[StageSpec], *, pairs: bool, format_step: beam.PTransform,
                     write_step: beam.PTransform) -> None:
    """The graph `gemmaflow sft` and `gemmaflow prefs` share: parse, the registry's stages, format, write.

    Rejected records reach the rejected sink scrubbed when PII is on (those dropped before the PII stage
    are scrubbed on the way; the format step's already were), dead letters the dead-letter sink.
    """
    parsed = pipeline | "Read" >> ParseExamples(files, config.context_separator, fingerprint(config), pairs=pairs)
    chain = apply_chain(parsed[KEPT], stages, config, FileSystems.join(output, SPILL_DIR))
    formatted = chain.kept | "Format" >> format_step
    stats = [parsed[STATS], *chain.stats, formatted[STATS]]

    rejected = [parsed[REJECTED], *chain.rejected] | "GatherChainRejected" >> beam.Flatten()
    if config.pii.enabled:
        scrubbed = rejected | "ScrubRejected" >> ScrubRejected(config.pii)
        rejected = scrubbed[KEPT]
        stats.append(scrubbed[STATS])
    rejected_rows = (
        [rejected, formatted[REJECTED]]
        | "GatherRejectedExamples" >> beam.Flatten()
        | "ToSinkRows" >> beam.Map(sink_row)
    )
    stats.append(formatted[KEPT] | "Pack" >> write_step)
    write_sinks(output, [parsed[DEAD]], [rejected_rows], rejected_schema=REJECTED_SCHEMA)
    write_counts(stats, output)


class MixAndPack(beam.PTransform):
    """(split, PackItem) -> each source's training examples sampled or repeated to its weight (pack's
    mixture, over sources) -> packed shards. Returns the mixture's and the packer's counts."""

    def __init__(self, output: str, config: SftConfig, pad_id: int) -> None:
        super().__init__()
        self.output = output
        self.config = config
        self.pad_id = pad_id

    def expand(self, items: beam.PCollection) -> beam.PCollection:
        config = self.config
        mixed = items | "Mixture" >> ApplyMixture(config.mixture(), config.packing.seed, self.output)
        packed = mixed[KEPT] | "PackShards" >> PackAndWriteShards(self.output, config.packing, config.output,
                                                                  self.pad_id)
        return (mixed[STATS], packed) | "GatherMixAndPackStats" >> beam.Flatten()


def build_sft(pipeline: beam.Pipeline, files: list[SourceFile], tokenizer_path: str, output: str,
              config: SftConfig, pad_id: int, registry: StageRegistry = REGISTRY) -> tuple[str, ...]:
    """Add the sft graph to `pipeline`; nothing runs until the pipeline does. Returns the chain."""
    build_chat_graph(pipeline, files, output, config, registry.chain(SFT, config), pairs=False,
                     format_step=FormatChat(tokenizer_path, config), write_step=MixAndPack(output, config, pad_id))
    return sft_chain(config, registry)


def source_counts(stages: Mapping[str, StageCounts], names: Sequence[str]) -> dict[str, Any]:
    """stats.json's `sources`: per source, records read and dead-lettered, examples dropped by the cleaning
    stages and the format step (the rest), kept after them, left out by the mixture (`not_sampled`),
    selected by it, and the examples (copies) and tokens written; `train_tokens` is what the weights aim at.
    Each source's read = dead_lettered + dropped + kept, and kept = not_sampled + selected."""
    read = stages.get(SOURCE, StageCounts(SOURCE)).extra
    mixed = stages.get(MIXTURE, StageCounts(MIXTURE)).extra
    counts = {}
    for name in names:
        records, dead = read.get(f"read.{name}", 0), read.get(f"dead_lettered.{name}", 0)
        kept, selected = mixed.get(f"in.{name}", 0), mixed.get(f"selected.{name}", 0)
        counts[name] = {"read": records, "dead_lettered": dead, "dropped": records - dead - kept, "kept": kept,
                        "not_sampled": kept - selected, "selected": selected,
                        "examples": mixed.get(f"copies.{name}", 0), "tokens": mixed.get(f"tokens.{name}", 0),
                        "train_tokens": mixed.get(f"train_tokens.{name}", 0)}
    return {"sources": counts}


def render_sources(sources: Mapping[str, Mapping[str, Any]]) -> str:
    """The run summary's per-source table (the manifest's `sources`)."""
    columns = ("weight", "read", "dead_lettered", "dropped", "kept", "not_sampled", "selected", "examples",
               "tokens", "target_tokens")
    titles = ("weight", "read", "dead", "dropped", "kept", "unsampled", "selected", "examples", "tokens", "target")
    width = max(12, *(len(name) + 2 for name in sources))
    lines = [f"{'source':<{width}}" + "".join(f"{title:>10}" for title in titles)]
    for name, counts in sources.items():
        cells = [f"{counts[c]:>10.3f}" if c == "weight" else f"{counts[c]:>10}" for c in columns]
        lines.append(f"{name:<{width}}" + "".join(cells))
    return "\n".join(lines)


def run_chat_job(job_name: str, kind: str, sources: Mapping[str, Sequence[str]], tokenizer_path: str, output: str,
                 config: Any, build: Callable[[beam.Pipeline, list[SourceFile], int], tuple[str, ...]],
                 beam_args: list[str] | None, overwrite: bool, echo: bool, progress: bool, registry: StageRegistry,
                 summarise: Callable[[dict[str, StageCounts]], dict[str, Any]] | None = None,
                 manifest_fields: Callable[[JobResult], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Check the config and tokenizer, run the job, name the shards and write the manifest; returns it.

    `sources` maps each source's name to its globs; `build(pipeline, files, pad_id)` adds the job's graph
    (`build_sft`, `build_prefs`). `summarise` adds job-specific blocks to stats.json, `manifest_fields`
    the keyword arguments of `finalise_shards` that give the manifest its mixture and per-source counts."""
    registry.validate(job_name, config)
    files = match_sources(sources)
    model_bytes = read_bytes(tokenizer_path)
    info = tokenizer_info(model_bytes)
    ChatTokens.from_processor(load_processor(model_bytes))  # fail before the pipeline starts, not on a worker
    inputs = [pattern for globs in sources.values() for pattern in globs]
    job = BeamJob(job_name, inputs, output, config, beam_args or [], overwrite, echo, progress,
                  run_info={"files": len(files), "tokenizer": tokenizer_path}, summarise=summarise)

    def finalise(result: JobResult) -> dict[str, Any]:
        return finalise_shards(result, output, kind=kind, tokenizer=info, packing=config.packing,
                               shards=config.output, config=config, echo=echo,
                               **(manifest_fields(result) if manifest_fields else {}))

    return run_beam_job(job, lambda pipeline: build(pipeline, files, info.pad_id), finalise).product


def sft_manifest_fields(result: JobResult, output: str, config: SftConfig) -> dict[str, Any]:
    """The manifest's mixture (the plan, realised training tokens per source) and `sources` (stats.json's
    per-source counts, with each source's inputs, weight and target tokens)."""
    plan = read_plan(output)
    counts = result.stats["sources"]
    sources = {source.name: {"input": list(source.input), "weight": plan["weights"].get(source.name, 0.0),
                             **counts[source.name], "target_tokens": plan["target_tokens"].get(source.name, 0)}
               for source in config.sources}
    realised = {name: entry["train_tokens"] for name, entry in sources.items()}
    return {"mixture": plan, "realised_tokens": realised, "sources": sources}


def run_sft(
    inputs: list[str],
    tokenizer_path: str,
    output: str,
    config: SftConfig,
    beam_args: list[str] | None = None,
    overwrite: bool = False,
    echo: bool = True,
    progress: bool = True,
    registry: StageRegistry = REGISTRY,
) -> dict[str, Any]:
    """Format, clean, mix and pack SFT examples into shards + manifest.json; returns the manifest.

    `inputs` (globs) are read as the one source of the run, in place of `config.sources`; empty, the
    config's sources are read."""
    if inputs:
        config = config.with_inputs(inputs)
    if not config.sources:
        raise ConfigError("no SFT input: give input files or name sources in the config")
    manifest = run_chat_job(
        SFT, "sft", {source.name: source.input for source in config.sources}, tokenizer_path, output, config,
        lambda pipeline, files, pad_id: build_sft(pipeline, files, tokenizer_path, output, config, pad_id, registry),
        beam_args, overwrite, echo, progress, registry,
        summarise=functools.partial(source_counts, names=[source.name for source in config.sources]),
        manifest_fields=lambda result: sft_manifest_fields(result, output, config))
    if echo:
        print(render_sources(manifest["sources"]))
    return manifest
