"""Differential benchmark: gemmaflow's strict web profile against datatrove's reference filters.

``configs/curate-web-strict.yaml`` promises the published Gopher (Rae et al., 2021), C4 (Raffel et
al., 2020) and FineWeb (Penedo et al., 2024) rules as HuggingFace datatrove implements them. This
script checks that promise document by document: each rule set alone (Gopher repetition, Gopher
quality, C4, FineWeb, and the mC4 paragraph rule), on the same documents, in both tools, and
reports per rule set

* agreement on keep/drop (target: >= 99.5%),
* among the documents both drop, the share dropped for the same reason (datatrove's reason strings
  mapped to gemmaflow's),
* for C4, among the documents both keep, the share whose edited text is identical,
* every disagreeing document id with both decisions.

datatrove runs in its own virtual environment (see benchmarks/datatrove_env.py) as a subprocess,
``benchmarks/datatrove_decisions.py``, which imports nothing from gemmaflow and writes its decisions
as JSONL; gemmaflow's side runs here meanwhile. Every document of the input is used, whatever its
collection: the rules are defined on any text, and code and math pages exercise the tokenizer and
the line rules in ways prose does not.

    python benchmarks/strict_vs_datatrove.py --input CORPUS/docs.jsonl.zst --json-out strict_vs_dt.json
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

# Run as a script, this folder is on sys.path: the stdlib-only datatrove side shares its reader and digest.
from datatrove_decisions import read_records, text_digest
from datatrove_env import datatrove_python

from gemmaflow.pipeline.config import load_curate_config
from gemmaflow.pipeline.heuristics import HeuristicsConfig, apply_heuristics, c4
from gemmaflow.pipeline.heuristics.text_stats import TextStats

HERE = Path(__file__).resolve().parent
STRICT = HERE.parent / "configs" / "curate-web-strict.yaml"
TARGET = 0.995
RULE_SETS = ("gopher_repetition", "gopher_quality", "c4", "fineweb", "mc4_paragraph")
_WEB_RULE_SETS = ("common", "gopher_repetition", "gopher_quality", "c4", "fineweb")

# datatrove's reason strings, by rule set, as gemmaflow's (without the rule-set prefix).
_REASONS: dict[str, dict[str, tuple[str, ...]]] = {
    "gopher_repetition": {
        "dup_para_frac": ("too_many_duplicate_paragraphs",),
        "dup_para_char_frac": ("too_many_duplicate_paragraph_chars",),
        "dup_line_frac": ("too_many_duplicate_lines",),
        "dup_line_char_frac": ("too_many_duplicate_line_chars",),
    },
    "gopher_quality": {
        "gopher_short_doc": ("too_few_words",),
        "gopher_long_doc": ("too_many_words",),
        "gopher_below_avg_threshold": ("mean_word_length_too_short",),
        "gopher_above_avg_threshold": ("mean_word_length_too_long",),
        "gopher_too_many_hashes": ("too_many_hashes",),
        "gopher_too_many_ellipsis": ("too_many_ellipses",),
        "gopher_too_many_bullets": ("too_many_bullet_lines",),
        "gopher_too_many_end_ellipsis": ("too_many_ellipsis_lines",),
        "gopher_below_alpha_threshold": ("too_few_alpha_words",),
        "gopher_enough_stop_words": ("too_few_stop_words",),
    },
    # C4 without any kept line has "no lines left", which datatrove counts as too few sentences.
    "c4": {
        "lorem_ipsum": ("lorem_ipsum",),
        "curly_bracket": ("curly_bracket",),
        "too_few_sentences": ("too_few_sentences", "no_lines_left"),
    },
    "fineweb": {
        "line_punct_ratio": ("too_few_lines_end_in_punctuation",),
        "short_line_ratio": ("too_many_short_lines",),
        "char_dup_ratio": ("too_many_duplicate_line_chars",),
        "list_ratio": ("too_many_newlines",),
    },
    "mc4_paragraph": {"< 3 paragraphs": ("too_few_paragraphs",)},
}
_NGRAM_REASONS = (
    (re.compile(r"top_(\d+)_gram"), "top_{}gram_too_frequent"),
    (re.compile(r"duplicated_(\d+)_n_grams"), "too_many_duplicate_{}grams"),
)


def same_reason(rule_set: str, datatrove_reason: str | None, gemmaflow_reason: str | None) -> bool:
    """Whether datatrove's reason string names the rule gemmaflow reports (prefix stripped)."""
    if datatrove_reason is None or gemmaflow_reason is None:
        return datatrove_reason == gemmaflow_reason
    ours = gemmaflow_reason.split(".", 1)[-1]
    for pattern, template in _NGRAM_REASONS:
        match = pattern.fullmatch(datatrove_reason)
        if match:
            return ours == template.format(match.group(1))
    return ours in _REASONS[rule_set].get(datatrove_reason, ())


def alone(config: HeuristicsConfig, rule_set: str) -> HeuristicsConfig:
    """``config`` with every web rule set but ``rule_set`` switched off (the universal checks too)."""
    return replace(
        config,
        **{name: replace(getattr(config, name), enabled=name == rule_set) for name in _WEB_RULE_SETS},
    )


def gemmaflow_deciders(strict: HeuristicsConfig) -> dict[str, Callable[[str], list]]:
    """Per rule set: text -> [keep, reason, digest of the text left], like the datatrove side."""

    def web(rule_set: str) -> Callable[[str], list]:
        config = alone(strict, rule_set)

        def decide(text: str) -> list:
            result = apply_heuristics(text, "web", config)
            keep = result.drop_reason is None
            return [keep, result.drop_reason, text_digest(result.text) if keep else None]

        return decide

    paragraphs = replace(strict.c4, min_paragraphs=3)  # mC4's value

    def mc4(text: str) -> list:
        reason = c4.check_paragraphs(TextStats(text), paragraphs, {})
        return [reason is None, reason, None]

    return {**{name: web(name) for name in RULE_SETS[:4]}, "mc4_paragraph": mc4}


def compare(rows: Iterator[tuple[dict, dict, dict]]) -> dict[str, Any]:
    """Agreement figures and disagreements per rule set from (record, datatrove row, gemmaflow row)."""
    report: dict[str, Any] = {
        name: {
            "docs": 0,
            "agree": 0,
            "both_drop": 0,
            "same_reason": 0,
            "both_keep": 0,
            "same_text": 0,
            "disagreements": [],
            "reason_mismatches": [],
        }
        for name in RULE_SETS
    }
    for record, theirs, ours in rows:
        for name in RULE_SETS:
            entry = report[name]
            (dt_keep, dt_reason, dt_digest), (gf_keep, gf_reason, gf_digest) = theirs[name], ours[name]
            entry["docs"] += 1
            where = {
                "id": record["id"],
                "source": record.get("source", ""),
                "datatrove": dt_reason,
                "gemmaflow": gf_reason,
            }
            if dt_keep != gf_keep:
                entry["disagreements"].append(where)
                continue
            entry["agree"] += 1
            if dt_keep:
                entry["both_keep"] += 1
                entry["same_text"] += dt_digest == gf_digest
            else:
                entry["both_drop"] += 1
                if same_reason(name, dt_reason, gf_reason):
                    entry["same_reason"] += 1
                else:
                    entry["reason_mismatches"].append(where)
    for entry in report.values():
        entry["agreement"] = entry["agree"] / entry["docs"] if entry["docs"] else 0.0
        entry["same_reason_share"] = entry["same_reason"] / entry["both_drop"] if entry["both_drop"] else 1.0
        entry["same_text_share"] = entry["same_text"] / entry["both_keep"] if entry["both_keep"] else 1.0
    return report


def print_report(report: dict[str, Any], show: int) -> None:
    """The summary table, then up to ``show`` disagreements and reason mismatches per rule set."""
    print(f"{'rule set':18} {'docs':>6} {'agree':>8} {'both drop':>9} {'same reason':>11} {'same text':>9}")
    for name, entry in report.items():
        same_text = f"{entry['same_text_share']:9.2%}" if name == "c4" else f"{'-':>9}"
        flag = "" if entry["agreement"] >= TARGET else "  < target"
        print(
            f"{name:18} {entry['docs']:6d} {entry['agreement']:8.2%} {entry['both_drop']:9d} "
            f"{entry['same_reason_share']:11.2%} {same_text}{flag}"
        )
    for name, entry in report.items():
        for label in ("disagreements", "reason_mismatches"):
            if entry[label]:
                print(f"\n{name}: {len(entry[label])} {label.replace('_', ' ')} (datatrove vs gemmaflow)")
            for item in entry[label][:show]:
                theirs, ours = item["datatrove"] or "keep", item["gemmaflow"] or "keep"
                print(f"  {item['id']} [{item['source']}]: {theirs} vs {ours}")


def start_datatrove(python: str, args: argparse.Namespace, output: Path) -> subprocess.Popen:
    command = [python, str(HERE / "datatrove_decisions.py"), "--input", str(args.input), "--output", str(output)]
    if args.limit is not None:
        command += ["--limit", str(args.limit)]
    return subprocess.Popen(command)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, required=True, help="{id, text, source} JSONL (.zst or plain)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N documents (default: all)")
    parser.add_argument("--datatrove-python", default=None, help="default: benchmarks/datatrove_env.py's venv")
    parser.add_argument("--json-out", type=Path, default=None, help="write the full report (all ids) here")
    parser.add_argument("--show", type=int, default=10, help="disagreements printed per rule set")
    args = parser.parse_args(argv)
    deciders = gemmaflow_deciders(load_curate_config(STRICT).heuristics)
    with tempfile.TemporaryDirectory() as scratch:
        theirs_path = Path(scratch) / "datatrove.jsonl"
        child = start_datatrove(args.datatrove_python or str(datatrove_python()), args, theirs_path)
        ours = []
        for count, record in enumerate(read_records(args.input, args.limit), 1):
            ours.append({name: decide(record["text"]) for name, decide in deciders.items()})
            if count % 2000 == 0:
                print(f"gemmaflow: {count} docs", file=sys.stderr, flush=True)
        if child.wait() != 0:
            sys.exit(f"error: the datatrove side failed (exit {child.returncode})")
        with theirs_path.open(encoding="utf-8") as lines:
            theirs = [json.loads(line) for line in lines]
    records = read_records(args.input, args.limit)
    report = compare(zip(records, theirs, ours, strict=True))

    print_report(report, args.show)
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0 if all(entry["agreement"] >= TARGET for entry in report.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
