"""Assemble report.html from whatever a run folder holds: one section per question a reader asks.

Each section names the file it reads; a section whose file is absent says the step was not part of
this run. The page is one self-contained file (inline CSS and SVG, no script, no external URL), so
it can be mailed, archived or opened offline. Layout of a run folder: gemmaflow/report/readers.py.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import TypeVar

from gemmaflow.core.shard_format import Manifest
from gemmaflow.pipeline.stats import AccountingError, check_accounting
from gemmaflow.report import charts
from gemmaflow.report.readers import (
    ABLATION,
    DEMO_TIMINGS,
    EVAL_RESULTS,
    PRETRAIN_MANIFEST,
    PRETRAIN_METRICS,
    RLHF,
    SFT_MANIFEST,
    SFT_METRICS,
    SXS_RESULTS,
    TOKENIZER_CARD,
    CurateStats,
    ReportInputError,
    RlhfRun,
    TokenizerCard,
    TrainingMetrics,
    find_ablation,
    find_eval_results,
    find_rlhf,
    find_stats,
    find_sxs_results,
    read_ablation,
    read_classifier_scores,
    read_eval_results,
    read_manifest,
    read_metrics,
    read_rlhf,
    read_stats,
    read_sxs_results,
    read_timings,
    read_tokenizer_card,
)

REPORT_FILE = "report.html"
WIDE = 900  # px, the width of every chart
TOP_LANGUAGES = 12  # languages beyond these are summed into "other"
SCORE_BINS = 20
PII_REJECTED_STAGE = "pii_rejected"  # pipeline/stages/pii.py: the rejected sink scrubbed too
T = TypeVar("T")


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    sources: str  # the file(s) the section reads, relative to the run folder
    body: str


@dataclass(frozen=True)
class RunInputs:
    """Everything read from one run folder; None where the step was not part of the run."""

    run_dir: Path
    stats: CurateStats | None
    tokenizer: TokenizerCard | None
    pretrain_manifest: Manifest | None
    sft_manifest: Manifest | None
    pretrain_metrics: TrainingMetrics | None
    sft_metrics: TrainingMetrics | None
    timings: dict[str, float] | None  # a demo run's wall seconds per step
    evaluation: dict[str, dict] | None  # `gemmaflow eval` results.json
    side_by_side: dict | None  # `gemmaflow sxs` sxs.json
    ablation: dict | None  # `gemmaflow ablate` ablation.json
    rlhf: RlhfRun | None  # the rule-following RLHF check (reward model, REINFORCE, DPO)


def _optional(path: Path, reader: Callable[[Path], T]) -> T | None:
    return reader(path) if path.is_file() else None


def load_run(run_dir: Path) -> RunInputs:
    """Read every file of the run that exists; raise ReportInputError if none does or one is malformed."""
    if not run_dir.is_dir():
        raise ReportInputError(f"{run_dir}: not a folder")
    stats_path = find_stats(run_dir)
    inputs = RunInputs(
        run_dir=run_dir,
        stats=read_stats(stats_path) if stats_path else None,
        tokenizer=_optional(run_dir / TOKENIZER_CARD, read_tokenizer_card),
        pretrain_manifest=_optional(run_dir / PRETRAIN_MANIFEST, read_manifest),
        sft_manifest=_optional(run_dir / SFT_MANIFEST, read_manifest),
        pretrain_metrics=_optional(run_dir / PRETRAIN_METRICS, read_metrics),
        sft_metrics=_optional(run_dir / SFT_METRICS, read_metrics),
        timings=_optional(run_dir / DEMO_TIMINGS, read_timings),
        evaluation=read_eval_results(found) if (found := find_eval_results(run_dir)) else None,
        side_by_side=read_sxs_results(found) if (found := find_sxs_results(run_dir)) else None,
        ablation=read_ablation(found) if (found := find_ablation(run_dir)) else None,
        rlhf=read_rlhf(found) if (found := find_rlhf(run_dir)) else None,
    )
    if all(getattr(inputs, f.name) is None for f in dataclasses.fields(inputs) if f.name != "run_dir"):
        raise ReportInputError(
            f"{run_dir}: no run files found (looked for stats.json, curated/stats.json, {TOKENIZER_CARD}, "
            f"{PRETRAIN_MANIFEST}, {SFT_MANIFEST}, {PRETRAIN_METRICS}, {SFT_METRICS}, {DEMO_TIMINGS}, "
            f"{' or '.join(EVAL_RESULTS)}, {' or '.join(SXS_RESULTS)}, {' or '.join(ABLATION)}, "
            f"{' or '.join(RLHF)})"
        )
    return inputs


# ------------------------------------------------------------------------------------------- helpers


def _absent(what: str) -> str:
    return f'<p class="absent">Not part of this run ({escape(what)}).</p>'


_GREYS = {"padding": "#bab0ac", "(no domain)": "#79706e"}
_NO_STATS = _absent("no stats.json or curated/stats.json")


def _table(header: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="{"num" if i >= numeric_from else ""}">{escape(c)}</td>'
                         for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"


def _bytes_label(power: int) -> str:
    value = 2**power
    for unit, size in (("M", 2**20), ("K", 2**10)):
        if value >= size:
            return f"{value // size}{unit}"
    return str(value)


def _sorted_int_keys(keys: set[str]) -> list[str]:
    return sorted(keys, key=lambda k: int(k.split("-")[0]) if k.split("-")[0].isdigit() else 1 << 60)


def _fixed(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


# ------------------------------------------------------------------------------------------ sections


def header(inputs: RunInputs) -> str:
    """Inputs, fingerprints, wall time and the accounting identity."""
    rows: list[list[str]] = [["run folder", str(inputs.run_dir)]]
    if inputs.timings:
        steps = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in inputs.timings.items())
        rows.append(["demo wall time", f"{sum(inputs.timings.values()):.1f} s ({steps})"])
    stats = inputs.stats
    if stats is not None:
        run = stats.run
        rows += [
            ["curate inputs", ", ".join(str(i) for i in run.get("inputs", [])) or "(not recorded)"],
            ["input files", str(run.get("files", "?"))],
            ["runner", str(run.get("runner", "?"))],
            ["pipeline version", str(run.get("pipeline_version", "?"))],
            ["curate config fingerprint", str(run.get("config_fingerprint", "?"))],
            ["curate wall time", f"{run['wall_seconds']:.1f} s" if "wall_seconds" in run else "(not recorded)"],
        ]
    for label, manifest in (("pack", inputs.pretrain_manifest), ("sft pack", inputs.sft_manifest)):
        if manifest is not None and manifest.config_fingerprint:
            rows.append([f"{label} config fingerprint", manifest.config_fingerprint])
    card = inputs.tokenizer
    if card is not None:
        rows.append(["tokenizer", f"{card.vocab_size or 0:,} pieces; config fingerprint "
                                  f"{card.config_fingerprint or '?'}"
                                  + (f"; {card.seconds:.1f} s" if card.seconds is not None else "")])
    for label, metrics in (("pretrain", inputs.pretrain_metrics), ("sft", inputs.sft_metrics)):
        if metrics is not None and metrics.step_seconds:
            steps = f"{len(metrics.train_loss):,} steps in {metrics.step_seconds:.1f} s"
            rows.append([f"{label} training", steps])
    table = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="meta">{table}</table>{_identity(stats)}'


def _identity(stats: CurateStats | None) -> str:
    if stats is None:
        return _absent("no curate statistics, so no accounting identity")
    terms = stats.accounting
    try:
        check_accounting({s.stage: s for s in stats.chain}, [s.stage for s in stats.chain])
        verdict, css = "holds", "ok"
    except AccountingError as exc:
        verdict, css = f"does NOT hold: {exc}", "bad"
    if not {"records_read", "kept", "dropped", "dead_lettered"} <= terms.keys():
        return f'<p class="identity bad">stats.json has no accounting block; the stage counts {escape(verdict)}.</p>'
    return (
        f'<p class="identity {css}">{terms["records_read"]:,} records read = {terms["kept"]:,} kept + '
        f'{terms["dropped"]:,} dropped + {terms["dead_lettered"]:,} dead-lettered: the identity {escape(verdict)}.</p>'
    )


def funnel(inputs: RunInputs) -> str:
    stats = inputs.stats
    if stats is None:
        return _NO_STATS
    chain = stats.chain
    stages = [s.stage for s in chain]
    drops = [(s.stage, reason, n) for s in chain for reason, n in sorted(s.dropped.items())]
    drops += [(s.stage, f"dead:{reason}", n) for s in chain for reason, n in sorted(s.dead_lettered.items())]
    drops.sort(key=lambda drop: stages.index(drop[0]))  # stable: reasons stay sorted within a stage
    series = {"kept": [float(s.kept) for s in chain]}
    for stage, reason, n in drops:
        series[f"{stage}: {reason}"] = [float(n) if name == stage else 0.0 for name in stages]
    svg = charts.bar_chart(stages, series, title="Documents per stage: kept and dropped by reason",
                           x_label="documents", y_label="stage", stacked=True, horizontal=True, width=WIDE)
    rows = [
        [s.stage, f"{s.docs_in:,}", f"{s.kept:,}", f"{s.total_dropped:,}", f"{s.total_dead:,}",
         f"{s.bytes_in / 1e6:.2f}", f"{s.bytes_kept / 1e6:.2f}"]
        for s in chain
    ]
    reason_rows = [[stage, reason, f"{n:,}"] for stage, reason, n in drops]
    side = "".join(f"<p>Off the chain: {escape(s.stage)} handled {s.docs_in:,} documents ({s.kept:,} passed on).</p>"
                   for s in stats.side_stages)
    return (
        _figure(svg, "Each bar is the documents a stage received: the kept part goes on to the next stage, "
                     "the coloured parts are dropped (or dead-lettered), one colour per reason.")
        + _table(["stage", "docs in", "kept", "dropped", "dead-lettered", "MB in", "MB kept"], rows)
        + "<h3>Drop reasons</h3>"
        + (_table(["stage", "reason", "documents"], reason_rows, numeric_from=2) if reason_rows
           else "<p>No document was dropped.</p>")
        + side
    )


def throughput(inputs: RunInputs) -> str:
    stats = inputs.stats
    if stats is None:
        return _NO_STATS
    timed = [s for s in stats.stages if s.seconds > 0 and s.docs_in > 0]
    untimed = [s.stage for s in stats.stages if s not in timed]
    note = (f"<p>Not timed (reading, grouping and writing happen in Beam's own transforms): "
            f"{escape(', '.join(untimed))}.</p>" if untimed else "")
    if not timed:
        return "<p>No stage recorded its time.</p>" + note
    svg = charts.bar_chart([s.stage for s in timed], {"documents / s": [s.docs_in / s.seconds for s in timed]},
                           title="Throughput per stage", x_label="documents per second (in the stage's function)",
                           y_label="stage", horizontal=True, width=WIDE)
    rows = [[s.stage, f"{s.docs_in:,}", f"{s.seconds:.3f}", f"{s.docs_in / s.seconds:,.0f}",
             f"{s.bytes_in / 1e6 / s.seconds:.2f}"] for s in timed]
    return (
        _figure(svg, "Documents a stage received divided by the seconds spent inside its per-document function, "
                     "summed over all workers (so: per core).")
        + _table(["stage", "docs in", "seconds", "docs / s", "MB / s"], rows) + note
    )


def crawl(inputs: RunInputs) -> str:
    stats = inputs.stats
    if stats is None:
        return _NO_STATS
    read = stats.stage("read")
    records = read.extra.get("crawl.records", 0) if read else 0
    if read is None or not records:
        return _absent("the run read no WARC or WET file")
    skipped = stats.tallies("read", "crawl.skipped")
    deduped = stats.stage("url_dedupe")
    steps = [("records in the crawl files", records), ("pages (HTML 200 responses, WET texts)", read.docs_in),
             ("pages with main text", read.kept)]  # fmt: skip
    if deduped is not None:
        steps.append(("one fetch per URL", deduped.kept))
    svg = charts.bar_chart([label for label, _ in steps], {"records": [float(n) for _, n in steps]},
                           title="From crawl records to documents", x_label="records", y_label="",
                           horizontal=True, width=WIDE)  # fmt: skip
    skipped_rows = [[reason, f"{n:,}"] for reason, n in sorted(skipped.items(), key=lambda item: (-item[1], item[0]))]
    charsets = stats.tallies("read", "crawl.charset")
    charset_rows = [[source, f"{n:,}"] for source, n in sorted(charsets.items(), key=lambda item: -item[1])]
    page_drops = [[reason, f"{n:,}"] for reason, n in sorted(read.dropped.items())]
    page_drops += [[f"dead: {reason}", f"{n:,}"] for reason, n in sorted(read.dead_lettered.items())]
    return (
        _figure(svg, f"{records:,} records read; {read.docs_in / records:.1%} of them were pages; "
                     f"{read.kept / max(1, read.docs_in):.1%} of the pages gave main text.")
        + "<h3>Records that are not pages (skipped, by kind and reason)</h3>"
        + _table(["reason", "records"], skipped_rows)
        + "<h3>Pages dropped or dead-lettered while reading</h3>"
        + (_table(["reason", "pages"], page_drops) if page_drops else "<p>None.</p>")
        + "<h3>Where each page's charset came from</h3>"
        + _table(["source", "pages"], charset_rows)
    )  # fmt: skip


def lengths(inputs: RunInputs) -> str:
    stats = inputs.stats
    if stats is None:
        return _NO_STATS
    before, after = stats.tallies("read", "length_log2"), stats.tallies("write", "length_log2")
    if not before and not after:
        return "<p>This stats.json has no length histogram (written by an older pipeline version).</p>"
    powers = sorted(int(k) for k in {*before, *after})
    buckets = [str(p) for p in range(powers[0], powers[-1] + 1)]
    labels = [f"{_bytes_label(p)}-{_bytes_label(p + 1)}" for p in range(powers[0], powers[-1] + 1)]
    series = {"before (read)": [before.get(b, 0) for b in buckets],
              "after (written)": [after.get(b, 0) for b in buckets]}
    svg = charts.bar_chart(labels, series, title="Document length before and after curation",
                           x_label="UTF-8 bytes of text (power-of-two buckets)", y_label="documents", width=WIDE)
    return _figure(svg, f"Read: {sum(before.values()):,} documents; written: {sum(after.values()):,}. "
                        "Short fragments and very long dumps are what the heuristics remove.")


def languages(inputs: RunInputs) -> str:
    stats = inputs.stats
    if stats is None:
        return _NO_STATS
    before, after = stats.tallies("language", "lang"), stats.tallies("write", "lang")
    if not before and not after:
        if stats.stage("language") is None:
            return _absent("the language stage was switched off")
        return "<p>This stats.json has no language counts (written by an older pipeline version).</p>"
    ranked = sorted({*before, *after}, key=lambda k: (-before.get(k, 0), -after.get(k, 0), k))
    shown, rest = ranked[:TOP_LANGUAGES], ranked[TOP_LANGUAGES:]
    categories = shown + (["other"] if rest else [])

    def counts(tally: dict[str, int]) -> list[float]:
        return [tally.get(k, 0) for k in shown] + ([sum(tally.get(k, 0) for k in rest)] if rest else [])

    series = {}
    if before:
        series["before (language stage input)"] = counts(before)
    series["after (written)"] = counts(after)
    svg = charts.bar_chart(categories, series, title="Detected language before and after curation",
                           x_label="language (lid.176 code; unlabelled = not judged, e.g. code)",
                           y_label="documents", width=WIDE)
    return _figure(svg, "Every document entering the language stage, and every document written, by detected "
                        "language.")


def domains(inputs: RunInputs) -> str:
    stats = inputs.stats
    series: dict[str, dict[str, float]] = {}
    if stats is not None:
        labelled: dict[str, float] = {}
        for key, n in (stats.stage("domain").extra.items() if stats.stage("domain") else ()):
            labelled[key.split(".")[0]] = labelled.get(key.split(".")[0], 0) + n
        if labelled:
            series["documents labelled (domain stage)"] = labelled
        written = stats.tallies("write", "domain")
        if written:
            series["documents written"] = {k: float(v) for k, v in written.items()}
    manifest = inputs.pretrain_manifest
    if manifest is not None:
        train = manifest.split_totals.get("train")
        if train and train.tokens_per_domain:
            series["tokens packed (train split)"] = {k: float(v) for k, v in train.tokens_per_domain.items()}
        if manifest.mixture_weights:
            series["mixture weight (pack config)"] = manifest.mixture_weights
    if not series:
        return _absent("no domain counts in stats.json and no shard manifest")
    names = sorted({d for block in series.values() for d in block})
    shares = {label: [100 * block.get(d, 0) / (sum(block.values()) or 1) for d in names]
              for label, block in series.items()}
    svg = charts.bar_chart(names, shares, title="Domain mixture", x_label="domain", y_label="share (%)", width=WIDE)
    rows = [[label, *(f"{block.get(d, 0):,.3g}" if label.startswith("mixture") else f"{block.get(d, 0):,.0f}"
                      for d in names)] for label, block in series.items()]
    return _figure(svg, "Share of each domain at each point of the run (documents, then packed tokens, "
                        "next to the configured mixture weights).") + _table(["", *names], rows)


def duplicates(inputs: RunInputs) -> str:
    stats = inputs.stats
    if stats is None:
        return _NO_STATS
    parts = []
    exact = stats.stage("exact_dedupe")
    if exact is not None:
        parts.append(f"<p>Exact dedupe: {exact.extra.get('groups_with_duplicates', 0):,} groups of identical "
                     f"texts; {exact.dropped.get('exact_duplicate', 0):,} copies removed.</p>")
    near = stats.stage("near_dedupe")
    if near is None:
        return "".join(parts) + _absent("the near_dedupe stage was switched off")
    sizes = stats.tallies("near_dedupe", "cluster_size")
    if not sizes:
        return "".join(parts) + "<p>Near dedupe found no cluster of near-duplicates.</p>"
    buckets = _sorted_int_keys(set(sizes))
    svg = charts.bar_chart(buckets, {"clusters": [sizes[b] for b in buckets]},
                           title="Near-duplicate cluster sizes", x_label="documents in the cluster",
                           y_label="clusters", width=WIDE)
    parts.append(_figure(svg, f"{near.extra.get('clusters', sum(sizes.values())):,} clusters; "
                              f"{near.dropped.get('near_duplicate', 0):,} near-duplicates removed (one survivor per "
                              f"cluster); {near.extra.get('candidate_pairs', 0):,} candidate pairs, "
                              f"{near.extra.get('verified_pairs', 0):,} verified."))
    return "".join(parts)


def pii(inputs: RunInputs) -> str:
    stats = inputs.stats
    if stats is None:
        return _NO_STATS
    stage = stats.stage("pii")
    if stage is None:
        return _absent("no pii stage in stats.json")
    detected, replaced = stats.tallies("pii", "detected"), stats.tallies("pii", "replaced")
    sink = stats.tallies(PII_REJECTED_STAGE, "replaced")
    if not detected and not replaced and not sink:
        return "<p>The PII stage ran and found nothing.</p>"
    types = sorted({*detected, *replaced, *sink}, key=lambda t: (-detected.get(t, 0), t))
    series = {"detected in kept documents": [detected.get(t, 0) for t in types],
              "replaced in kept documents": [replaced.get(t, 0) for t in types]}
    if stats.stage(PII_REJECTED_STAGE) is not None:
        series["replaced in the rejected sink"] = [sink.get(t, 0) for t in types]
    svg = charts.bar_chart(types, series, title="PII per entity type", x_label="spans", y_label="entity type",
                           horizontal=True, width=WIDE)
    note = (" The NER model was unavailable: PERSON and LOCATION were not looked for."
            if stage.extra.get("ner_unavailable") else "")
    scrubbed = stage.extra.get("docs_scrubbed", 0)
    return _figure(svg, f"Spans found in the kept documents per entity type ({scrubbed:,} documents had a "
                        "replacement; overlapping detections are resolved before replacement, so replaced can be "
                        "lower), and spans replaced in the rejected documents before they were written." + note)


def _classifier_thresholds(stats: CurateStats) -> dict[str, tuple[float, str]]:
    """`{classifier name: (threshold, what it does)}` from the resolved config (pipeline/config.py
    ClassifierEntry); an `annotate` classifier that relabels no domain has no threshold to draw."""
    block = stats.run.get("config", {}).get("classify", {})
    entries = block.get("classifiers", []) if isinstance(block, dict) else []
    found = {}
    for entry in entries if isinstance(entries, list) else []:
        if not (isinstance(entry, dict) and isinstance(entry.get("threshold"), (int, float))):
            continue
        action = entry.get("action", "annotate")
        if action != "annotate":
            found[str(entry.get("name"))] = (float(entry["threshold"]), str(action))
        elif entry.get("write_domain"):
            found[str(entry.get("name"))] = (float(entry["threshold"]), "relabels domain")
    return found


def _bin(values: list[float], edges: list[float]) -> list[int]:
    counts = [0] * (len(edges) - 1)
    span = (edges[-1] - edges[0]) or 1.0
    for value in values:
        counts[min(max(int((value - edges[0]) / span * len(counts)), 0), len(counts) - 1)] += 1
    return counts


def classifiers(inputs: RunInputs) -> str:
    stats = inputs.stats
    if stats is None:
        return _NO_STATS
    if stats.stage("classify") is None:
        return _absent("no classify stage in stats.json")
    columns = read_classifier_scores(stats.output_dir)
    if not columns:
        return "<p>The classify stage ran, but the curated Parquet holds no classifier scores.</p>"
    thresholds = _classifier_thresholds(stats)
    parts = []
    for column in columns:
        values = column.passed + column.dropped
        lo, hi = min(0.0, *values), max(1.0, *values)  # probabilities fill [0, 1]; anything else its range
        edges = [lo + (hi - lo) * i / SCORE_BINS for i in range(SCORE_BINS + 1)]
        series = {"passed the classify stage": _bin(column.passed, edges)}
        if column.dropped:
            series["dropped by the classify stage"] = _bin(column.dropped, edges)
        marks = {f"threshold, {thresholds[column.name][1]}": thresholds[column.name][0]} if (
            column.name in thresholds) else {}
        svg = charts.histogram(edges, series, title=f"Classifier score: {column.name}", x_label="score",
                               y_label="documents", thresholds=marks, width=WIDE)
        parts.append(_figure(svg, f"{len(column.passed):,} documents passed, {len(column.dropped):,} dropped "
                                  "(read from the curated and rejected Parquet)."))
    return "".join(parts)


def tokenizer(inputs: RunInputs) -> str:
    card = inputs.tokenizer
    if card is None:
        return _absent(f"no {TOKENIZER_CARD}")
    if not card.tokens_per_word:
        return "<p>The tokenizer card has no held-out documents to measure fertility on.</p>"
    names = sorted(card.tokens_per_word)
    svg = charts.bar_chart(names, {"tokens per word": [card.tokens_per_word[n] for n in names]},
                           title="Tokenizer fertility per domain", x_label="domain (held-out documents)",
                           y_label="tokens per word", width=WIDE)
    facts = []
    if card.vocab_size:
        facts.append(f"vocabulary {card.vocab_size:,} pieces")
    if card.round_trip is not None:
        facts.append(f"exact round trip on {100 * card.round_trip:.1f}% of held-out documents")
    if card.unused_share is not None:
        facts.append(f"{100 * card.unused_share:.1f}% of learned pieces unused on them")
    rows = [[n, _fixed(card.tokens_per_word.get(n)), _fixed(card.bytes_per_token.get(n))] for n in names]
    rows += [[group, _fixed(row.get("tokens_per_word")), _fixed(row.get("bytes_per_token"))]
             for group, row in sorted(card.group_rows.items())]
    return (_figure(svg, "Tokens per whitespace-separated word on held-out documents (lower: the vocabulary fits "
                         "the domain better). " + "; ".join(facts) + ".")
            + _table(["domain / language", "tokens / word", "bytes / token"], rows))


def packing(inputs: RunInputs) -> str:
    parts = []
    for label, rel, manifest in (("Pretraining", PRETRAIN_MANIFEST, inputs.pretrain_manifest),
                                 ("SFT", SFT_MANIFEST, inputs.sft_manifest)):
        if manifest is None:
            parts.append(f"<h3>{label}</h3>" + _absent(f"no {rel}"))
            continue
        totals = manifest.split_totals
        splits = [name for name, s in totals.items() if s.tokens > 0]
        domain_names = sorted({d for name in splits for d in totals[name].tokens_per_domain})
        series: dict[str, list[float]] = {}
        for d in domain_names:
            series[d] = [float(totals[s].tokens_per_domain.get(d, 0)) for s in splits]
        unlabelled = [totals[s].non_pad_tokens - sum(totals[s].tokens_per_domain.values())
                      for s in splits]
        if any(u > 0 for u in unlabelled):
            series["(no domain)"] = [float(u) for u in unlabelled]
        series["padding"] = [float(totals[s].tokens - totals[s].non_pad_tokens) for s in splits]
        svg = charts.bar_chart(splits, series, stacked=True, horizontal=True, width=WIDE, colours=_GREYS,
                               title=f"{label}: packed tokens, {100 * manifest.padding_fraction:.2f}% padding",
                               x_label="tokens", y_label="split")
        rows = [[s, f"{totals[s].sequences:,}", f"{totals[s].tokens:,}",
                 f"{totals[s].non_pad_tokens:,}",
                 f"{totals[s].loss_tokens:,}" if totals[s].loss_tokens is not None else "-",
                 f"{100 * (1 - totals[s].non_pad_tokens / totals[s].tokens):.2f}%"]
                for s in splits]
        split_note = (f"; {100 * manifest.documents_split_fraction:.1f}% of documents split across rows"
                      if manifest.documents_split_fraction is not None else "")
        parts.append(f"<h3>{label}</h3>" + _figure(
            svg, f"Rows of {manifest.seq_len:,} tokens; each bar is a split's tokens by domain (or SFT category), "
                 f"padding last{split_note}.")
            + _table(["split", "sequences", "tokens", "non-pad tokens", "loss tokens", "padding"], rows))
    return "".join(parts)


def training(inputs: RunInputs) -> str:
    parts = []
    for label, rel, metrics in (("Pretraining", PRETRAIN_METRICS, inputs.pretrain_metrics),
                                ("SFT", SFT_METRICS, inputs.sft_metrics)):
        if metrics is None:
            parts.append(f"<h3>{label}</h3>" + _absent(f"no {rel}"))
            continue
        series = {"training loss": metrics.train_loss, "validation loss": metrics.eval_loss}
        svg = charts.line_chart(series, title=f"{label} loss", x_label="step", y_label="loss (nats per token)",
                                dashed=("validation loss",), width=WIDE)
        facts = []
        if metrics.train_loss:
            facts.append(f"final training loss {metrics.train_loss[-1][1]:.3f}")
        if metrics.eval_loss:
            facts.append(f"final validation loss {metrics.eval_loss[-1][1]:.3f}")
        if metrics.tokens_per_s:
            facts.append(f"median {statistics.median(metrics.tokens_per_s):,.0f} tokens/s")
        if metrics.mfu:
            facts.append(f"median MFU {100 * statistics.median(metrics.mfu):.1f}%")
        parts.append(f"<h3>{label}</h3>" + _figure(svg, "; ".join(facts) + "."))
    return "".join(parts)


_MAIN_METRIC = {"multiple_choice": ("acc", "accuracy"), "generate": ("exact_match", "exact match"),
                "perplexity": ("bits_per_byte", "bits per byte")}


def _with_interval(metrics: dict, key: str) -> str:
    """value ± half-width of the 95% normal interval (1.96 standard errors), when a standard error exists."""
    value, stderr = metrics.get(key), metrics.get(f"{key}_stderr")
    if not isinstance(value, (int, float)):
        return "?"
    return f"{value:.3f}" + (f" ± {1.96 * stderr:.3f}" if isinstance(stderr, (int, float)) else "")


def evaluation(inputs: RunInputs) -> str:
    results = inputs.evaluation
    if results is None:
        return _absent(f"no {' or '.join(EVAL_RESULTS)}")
    rows = []
    for name, metrics in results.items():
        key, label = _MAIN_METRIC[metrics["kind"]]
        extra = []
        if metrics["kind"] == "multiple_choice":
            extra.append(f"acc_norm {_with_interval(metrics, 'acc_norm')}; chance {metrics.get('chance', 0):.3f}")
        if "num_fewshot" in metrics:
            extra.append(f"{metrics['num_fewshot']}-shot")
        rows.append([name, label, f"{metrics['n']:,}", _with_interval(metrics, key), "; ".join(extra)])
    scored = [(name, m) for name, m in results.items() if m["kind"] != "perplexity"]
    parts = []
    if scored:
        key_of = {name: _MAIN_METRIC[m["kind"]][0] for name, m in scored}
        svg = charts.bar_chart(
            [name for name, _ in scored],
            {"score": [float(m.get(key_of[name], 0.0)) for name, m in scored],
             "chance": [float(m.get("chance", 0.0)) for _, m in scored]},
            errors={"score": [1.96 * float(m.get(f"{key_of[name]}_stderr", 0.0)) for name, m in scored]},
            title="Accuracy or exact match per task", x_label="score (whiskers: 95% interval)", y_label="task",
            horizontal=True, width=WIDE, colours={"chance": "#bab0ac"})
        parts.append(_figure(svg, "Multiple choice: accuracy against chance; generation: exact match."))
    parts.append(_table(["task", "metric", "items", "value (95% interval)", "also"], rows, numeric_from=2))
    groups = [[name, group, f"{g['n']:,}", f"{g['bytes']:,}", f"{g['bits_per_byte']:.3f}"]
              for name, metrics in results.items() if metrics["kind"] == "perplexity"
              for group, g in metrics.get("by_group", {}).items()]
    if groups:
        svg = charts.bar_chart([f"{name} / {group}" for name, group, *_ in groups],
                               {"bits per byte": [float(row[-1]) for row in groups]},
                               title="Bits per byte by group (lower is better)", x_label="bits per byte",
                               y_label="task / group", horizontal=True, width=WIDE)
        parts.append("<h3>Bits per byte by group</h3>" + _figure(svg, "Held-out documents; comparable across "
                                                                        "tokenizers.")
                     + _table(["task", "group", "documents", "bytes", "bits per byte"], groups, numeric_from=2))
    return "".join(parts)


def side_by_side(inputs: RunInputs) -> str:
    document = inputs.side_by_side
    if document is None:
        return _absent(f"no {' or '.join(SXS_RESULTS)}")
    summaries = [*document["by_capability"].items(), ("overall", document["overall"])]
    svg = charts.bar_chart(
        [name for name, _ in summaries], {"A's win rate": [s["win_rate_a"] for _, s in summaries]},
        errors={"A's win rate": [(s["ci_high"] - s["ci_low"]) / 2 for _, s in summaries]},
        title="Win rate of A per capability (0.5: no preference)", x_label="win rate of A (whiskers: 95% interval)",
        y_label="capability", horizontal=True, width=WIDE)
    caption = (f"A = {document.get('model_a', '?')}, B = {document.get('model_b', '?')}, judge "
               f"{document.get('judge', '?')}; every prompt judged in both orders.")
    rows = [[name, f"{s['n']:,}", f"{s['win_rate_a']:.3f}", f"{s['ci_low']:.3f} to {s['ci_high']:.3f}",
             f"{s['wins_a']:,}", f"{s['ties']:,}", f"{s['wins_b']:,}"] for name, s in summaries]
    return _figure(svg, caption) + _table(
        ["capability", "prompts", "win rate of A", "95% interval", "A wins", "ties", "B wins"], rows)


def ablation(inputs: RunInputs) -> str:
    document = inputs.ablation
    if document is None:
        return _absent(f"no {' or '.join(ABLATION)}")
    variants = document["variants"]
    metrics = sorted({key for v in variants.values() for key in v["summary"] if key.count("/") == 1})
    seeds = len(document.get("seeds", [])) or "?"
    parts = []
    for metric in metrics:
        present = [(name, v["summary"][metric]) for name, v in variants.items() if metric in v["summary"]]
        lower_better = metric.endswith("bits_per_byte")
        svg = charts.bar_chart(
            [name for name, _ in present], {metric: [f["mean"] for _, f in present]},
            errors={metric: [f["ci95"] or 0.0 for _, f in present]},
            title=f"{metric} ({'lower' if lower_better else 'higher'} is better)",
            x_label=f"mean over {seeds} seeds (whiskers: 95% t interval)", y_label="variant", horizontal=True,
            width=WIDE)
        parts.append(_figure(svg, f"{metric} per variant."))
    rows = []
    for name, variant in variants.items():
        cells = []
        for metric in metrics:
            figure = variant["summary"].get(metric)
            cells.append("" if figure is None else f"{figure['mean']:.4f}"
                         + (f" ± {figure['ci95']:.4f}" if figure.get("ci95") is not None else ""))
        rows.append([name, f"{variant['epochs']:.2f}", *cells])
    budget = document.get("budget_tokens")
    note = (f"<p>Every variant trained on {budget:,} tokens per seed (epochs: passes over its own data), "
            f"{seeds} seeds; wall time {document.get('wall_seconds', 0):,.0f} s.</p>") if budget else ""
    return "".join(parts) + note + _table(["variant", "epochs", *metrics], rows)


# ---------------------------------------------------------------------------------------------- page

def rlhf(inputs: RunInputs) -> str:
    run = inputs.rlhf
    if run is None:
        return _absent(f"no {' or '.join(RLHF)}")
    document, curves, parts = run.document, run.curves, []
    reward = document["reward_model"]
    if "reward" in curves:
        series = {"training batch": curves["reward"]["accuracy"], "validation": curves["reward"]["eval_accuracy"]}
        svg = charts.line_chart(series, title="Reward model: pairwise accuracy", x_label="step",
                                y_label="share of pairs ordered right", dashed=("validation",), width=WIDE)
        parts.append(_figure(svg, f"Bradley–Terry reward model; held-out pairs (questions it never saw): accuracy "
                                  f"{reward['accuracy']:.3f} over {reward['pairs']} pairs."))
    if "reinforce" in curves:
        for key, label in (("reward", "mean reward-model score of the sampled answers"),
                           ("kl", "KL to the SFT reference (nats per answer)")):
            svg = charts.line_chart({key: curves["reinforce"][key]}, title=f"REINFORCE: {label}", x_label="step",
                                    y_label=key, width=WIDE)
            parts.append(_figure(svg, "Per step, over that step's sampled answers."))
    if "dpo" in curves:
        svg = charts.line_chart({"implicit reward margin": curves["dpo"]["reward_margin"]},
                                title="DPO: implicit reward margin of chosen over rejected", x_label="step",
                                y_label="beta x log-ratio margin", width=WIDE)
        parts.append(_figure(svg, "Per training batch of pairs."))
    policies = document["policies"]
    svg = charts.bar_chart(list(policies), {"rule share": [p["rule_share"] for p in policies.values()]},
                           title="Share of sampled answers that follow the rule", x_label="share", y_label="policy",
                           horizontal=True, width=WIDE)
    rows = [[name, f"{p['samples']:,}", f"{p['rule_share']:.3f}", f"{p['kl_to_sft']:.3f}"]
            for name, p in policies.items()]
    parts.append(_figure(svg, f"Task: {escape(str(document.get('task', '?')))}; answers sampled at temperature 1 "
                              "on held-out questions.")
                 + _table(["policy", "samples", "rule share", "KL to SFT (nats per answer)"], rows))
    return "".join(parts)


SECTIONS: tuple[tuple[str, str, str, Callable[[RunInputs], str]], ...] = (
    ("funnel", "Document funnel", "stats.json: stages[].docs_in, kept, dropped, dead_lettered", funnel),
    ("crawl", "Web crawl records", "stats.json: read extra crawl.*, url_dedupe", crawl),
    ("lengths", "Document lengths", "stats.json: read and write extra length_log2.*", lengths),
    ("languages", "Languages", "stats.json: language and write extra lang.*", languages),
    ("domains", "Domain mixture", "stats.json: domain extra, write extra domain.*; shards/manifest.json", domains),
    ("duplicates", "Duplicates", "stats.json: exact_dedupe, near_dedupe extra cluster_size.*", duplicates),
    ("pii", "PII", "stats.json: pii and pii_rejected extra detected.*, replaced.*", pii),
    ("classifiers", "Classifier scores", "data/ and rejected/*.parquet scores; stats.json run.config.classify",
     classifiers),
    ("tokenizer", "Tokenizer fertility", f"{TOKENIZER_CARD}: report.domains, report.groups", tokenizer),
    ("packing", "Packing and padding", f"{PRETRAIN_MANIFEST}, {SFT_MANIFEST}", packing),
    ("training", "Training and validation loss", f"{PRETRAIN_METRICS}, {SFT_METRICS}", training),
    ("evaluation", "Benchmark evaluation", f"{' or '.join(EVAL_RESULTS)}", evaluation),
    ("side_by_side", "Side by side", f"{' or '.join(SXS_RESULTS)}", side_by_side),
    ("ablation", "Data ablation", " or ".join(ABLATION), ablation),
    ("rlhf", "RLHF: reward model, REINFORCE and DPO", f"{' or '.join(RLHF)}; reward/, reinforce/, dpo/metrics.jsonl",
     rlhf),
    ("throughput", "Throughput per stage", "stats.json: stages[].docs_in, seconds", throughput),
)

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #1d1d1f;
       margin: 0; background: #f6f7f9; }
main { max-width: 960px; margin: 0 auto; padding: 24px 32px 64px; background: #fff; }
h1 { font-size: 26px; margin: 8px 0 4px; }
h2 { font-size: 20px; border-bottom: 2px solid #4e79a7; padding-bottom: 4px; margin-top: 40px; }
h3 { font-size: 16px; margin: 20px 0 6px; }
.source { color: #666; font-size: 12px; margin-top: -6px; }
.absent { color: #777; font-style: italic; }
table { border-collapse: collapse; margin: 10px 0; font-size: 13px; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 3px 10px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.meta th { color: #555; font-weight: normal; white-space: nowrap; }
table.meta td { word-break: break-all; }
.identity { font-weight: bold; padding: 8px 12px; border-radius: 4px; }
.identity.ok { background: #e8f4ea; } .identity.bad { background: #fbe7e7; }
figure { margin: 12px 0; } figcaption { color: #444; font-size: 13px; max-width: 900px; }
nav ol { columns: 2; font-size: 14px; } nav a { color: #2f5f8f; }
svg.chart { display: block; max-width: 100%; height: auto; }
"""


def render(inputs: RunInputs) -> str:
    """The whole report page."""
    sections = [Section(anchor, title, sources, build(inputs)) for anchor, title, sources, build in SECTIONS]
    toc = "".join(f'<li><a href="#{s.anchor}">{escape(s.title)}</a></li>' for s in sections)
    body = "".join(
        f'<section id="{s.anchor}"><h2>{escape(s.title)}</h2><p class="source">Reads: {escape(s.sources)}</p>'
        f"{s.body}</section>"
        for s in sections
    )
    title = f"gemmaflow run report: {inputs.run_dir.name or inputs.run_dir}"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_CSS}</style></head><body><main><h1>{escape(title)}</h1>{header(inputs)}"
        f"<nav><h2>Contents</h2><ol>{toc}</ol></nav>{body}</main></body></html>\n"
    )


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Build the report of `run_dir` and write it (default RUN_DIR/report.html); returns the path."""
    inputs = load_run(Path(run_dir))
    target = Path(out) if out is not None else Path(run_dir) / REPORT_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(inputs), encoding="utf-8")
    return target
