"""The run report: built from a bare curate output and from a full synthetic run, offline, with clear errors."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gemmaflow.cli import EXIT_USER_ERROR, main
from gemmaflow.pipeline.stats import StageCounts, stats_document
from gemmaflow.report import ReportInputError, write_report
from gemmaflow.report.build import SECTIONS
from gemmaflow.report.charts import bar_chart, format_number, histogram, line_chart, nice_ticks

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "screenshot_report.sh"
ABSENT = "Not part of this run"


def sections(html: str) -> dict[str, str]:
    return dict(re.findall(r'<section id="([a-z_]+)">(.*?)</section>', html, flags=re.S))


def drawn(fragment: str) -> bool:
    """The fragment holds at least one SVG chart and every one of its charts has data marks."""
    svgs = re.findall(r"<svg.*?</svg>", fragment, flags=re.S)
    return bool(svgs) and all('class="mark"' in svg for svg in svgs)


def assert_offline(html: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, flags=re.I)
    for forbidden in ("<script", "<link", "@import", "url("):
        assert forbidden not in html


# ------------------------------------------------------------------------------ a synthetic full run


def _stage(name: str, docs_in: int, kept: int, dropped: dict | None = None, seconds: float = 0.5,
           extra: dict | None = None) -> StageCounts:
    return StageCounts(name, docs_in=docs_in, bytes_in=docs_in * 2000, kept=kept, bytes_kept=kept * 2000,
                       dropped=dropped or {}, seconds=seconds, extra=extra or {})


def write_stats(folder: Path) -> None:
    stages = [
        _stage("read", 100, 100, seconds=0.0, extra={"length_log2.8": 20, "length_log2.10": 50, "length_log2.12": 30,
                                                     "crawl.records": 130, "crawl.skipped.request": 22,
                                                     "crawl.skipped.status_4xx": 8, "crawl.charset.header": 100}),
        _stage("normalise", 100, 100, extra={"mojibake_fixed": 2}),
        _stage("domain", 100, 100, extra={"web.content": 70, "code.extension": 20, "math.content": 10}),
        _stage("language", 100, 90, {"not_allowed_language": 10},
               extra={"lang.en": 80, "lang.de": 10, "lang.unlabelled": 10}),
        _stage("heuristics", 90, 80, {"gopher_quality.too_few_words": 6, "c4.too_much_boilerplate": 4}),
        _stage("classify", 80, 60, {"quality.good_below_threshold": 20}, extra={"quality.scored": 80}),
        _stage("exact_dedupe", 60, 56, {"exact_duplicate": 4}, seconds=0.0, extra={"groups_with_duplicates": 3}),
        _stage("near_dedupe", 56, 52, {"near_duplicate": 4},
               extra={"cluster_size.2": 2, "cluster_size.3-4": 1, "clusters": 3, "candidate_pairs": 5}),
        _stage("pii", 52, 52, extra={"detected.EMAIL_ADDRESS": 7, "replaced.EMAIL_ADDRESS": 7,
                                     "detected.PERSON": 4, "replaced.PERSON": 3,
                                     "docs_scrubbed": 6}),
        _stage("write", 52, 52, seconds=0.0,
               extra={"length_log2.10": 30, "length_log2.12": 22, "lang.en": 42, "lang.unlabelled": 10,
                      "domain.web": 36, "domain.code": 10, "domain.math": 6}),
    ]
    side = _stage("pii_rejected", 48, 48, extra={"detected.PHONE_NUMBER": 5, "replaced.PHONE_NUMBER": 5})
    config = {"classify": {"classifiers": [
        {"name": "domain", "threshold": 0.5, "action": "annotate", "write_domain": True},
        {"name": "quality", "label": "good", "threshold": 0.5, "action": "keep-only"},
    ]}}
    run = {"inputs": ["raw/*.jsonl"], "files": 1, "runner": "DirectRunner", "wall_seconds": 12.5,
           "config_fingerprint": "abc123", "config": config}
    document = stats_document({s.stage: s for s in [*stages, side]}, [s.stage for s in stages], run)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stats.json").write_text(json.dumps(document))
    scores = pa.map_(pa.string(), pa.float32())
    kept = pa.array([[("quality", 0.5 + i / 125), ("domain", 0.9)] for i in range(52)], scores)
    (folder / "data").mkdir()
    pq.write_table(pa.table({"id": [str(i) for i in range(52)], "scores": kept}), folder / "data" / "part-0.parquet")
    rejected = pa.array([[("quality", i / 45), ("domain", 0.8)] for i in range(20)] + [[]] * 5, scores)
    stages_of = ["classify"] * 20 + ["language"] * 5
    (folder / "rejected").mkdir()
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(25)], "scores": rejected, "reject_stage": stages_of}),
                   folder / "rejected" / "part-0.parquet")


def write_manifest(path: Path, kind: str, per_domain: dict[str, int]) -> None:
    non_pad = sum(per_domain.values())
    split = {"sequences": 4, "tokens": 4 * 128, "non_pad_tokens": non_pad, "loss_tokens": non_pad - 8,
             "documents": 9, "tokens_per_domain": per_domain, "shards": []}
    manifest = {
        "format": "gemmaflow-shards", "format_version": 1, "kind": kind, "seq_len": 128, "row_group_size": 64,
        "tokenizer": {"sha256": "0", "vocab_size": 512, "pad_id": 0, "eos_id": 1, "bos_id": 2},
        "splits": {"train": split, "validation": {**split, "sequences": 1, "tokens": 128, "non_pad_tokens": 100,
                                                  "tokens_per_domain": {next(iter(per_domain)): 100}}},
        "padding_fraction": 0.1, "documents_split": 1, "documents_split_fraction": 0.1, "truncated_documents": 0,
        "config": {}, "config_fingerprint": f"{kind}-fp",
    }
    if kind == "pretrain":
        manifest["mixture"] = {"weights": {"web": 0.6, "code": 0.3, "math": 0.1}, "token_budget": 500,
                               "realised_tokens": per_domain}
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(manifest))


def write_metrics(path: Path, steps: int) -> None:
    path.parent.mkdir(parents=True)
    lines = []
    for step in range(1, steps + 1):
        lines.append({"step": step, "loss": 6.0 / step**0.3, "lr": 1e-3, "grad_norm": 1.0, "tokens_per_s": 900.0,
                      "mfu": 0.2, "step_seconds": 0.1, "loss_tokens": 400})
        if step % 5 == 0:
            lines.append({"step": step, "eval_loss": 6.2 / step**0.3, "eval_tokens": 300})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def write_tokenizer_card(path: Path) -> None:
    row = {"documents": 3, "bytes": 3000, "tokens": 900, "round_trip_exact": 1.0, "unk_rate": 0.0,
           "byte_fallback_rate": 0.01, "bytes_per_token": 3.3, "tokens_per_word": 1.4}
    card = {
        "format": "gemmaflow-tokenizer-card/1", "model": {"file": "tokenizer.model", "vocab_size": 512},
        "config_fingerprint": "tok-fp", "seconds": {"sample": 0.5, "train": 2.0},
        "report": {"heldout_documents": 9, "round_trip": {"documents": 9, "exact": 9, "rate": 1.0, "failures": []},
                   "overall": row, "domains": {"web": row, "code": {**row, "tokens_per_word": 2.9}, "math": None},
                   "groups": {"web/en": row}, "vocabulary": {"size": 512, "unused_share": 0.2}},
    }
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(card))


@pytest.fixture
def full_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    write_stats(run / "curated")
    write_tokenizer_card(run / "tokenizer" / "tokenizer_card.json")
    write_manifest(run / "shards" / "manifest.json", "pretrain", {"web": 250, "code": 150, "math": 60})
    write_manifest(run / "sft_shards" / "manifest.json", "sft", {"open_qa": 300, "brainstorming": 100})
    write_metrics(run / "pretrain" / "metrics.jsonl", 20)
    write_metrics(run / "sft" / "metrics.jsonl", 10)
    (run / "demo.json").write_text(json.dumps({"seconds": {"curate": 20.0, "tokenizer": 2.5}}))
    write_eval_results(run / "eval" / "results.json")
    summary = {"n": 8, "win_rate_a": 0.75, "ci_low": 0.5, "ci_high": 0.94, "wins_a": 6, "wins_b": 2, "ties": 0}
    (run / "sxs").mkdir()
    (run / "sxs" / "sxs.json").write_text(json.dumps({"model_a": "runs/new", "model_b": "runs/old", "judge": "lm:j",
                                                      "overall": summary, "by_capability": {"safety": summary}}))
    (run / "ablation").mkdir()
    variant = {"epochs": 0.5, "summary": {"heldout/bits_per_byte": {"mean": 2.25, "ci95": 0.125},
                                          "cloze/acc": {"mean": 0.4, "ci95": None}}}
    (run / "ablation" / "ablation.json").write_text(json.dumps({
        "budget_tokens": 10240, "seeds": [0, 1], "wall_seconds": 60,
        "variants": {"raw": variant, "curated": {**variant, "epochs": 0.75}}}))
    write_rlhf(run / "rlhf")
    return run


def write_rlhf(folder: Path) -> None:
    """rule_following.json and the metrics of its reward, REINFORCE and DPO runs (gemmaflow/rule_following.py)."""
    policies = {name: {"samples": 268, "rule_share": share, "kl_to_sft": kl}
                for name, share, kl in (("sft", 0.46, 0.0), ("reinforce", 0.79, 1.14), ("dpo", 0.89, 1.16))}
    folder.mkdir(parents=True)
    (folder / "rule_following.json").write_text(json.dumps({
        "task": "digits or words", "policies": policies, "reward_model": {"accuracy": 0.985, "pairs": 67}}))
    curves = {"reward": [{"step": s, "loss": 0.5, "accuracy": 0.5 + s / 40} for s in range(1, 11)]
              + [{"step": 10, "eval_loss": 0.1, "eval_accuracy": 0.97}],
              "reinforce": [{"step": s, "loss": -1.0, "reward": s / 2, "kl": s / 10, "entropy": 0.3}
                            for s in range(1, 11)],
              "dpo": [{"step": s, "loss": 0.6, "accuracy": 0.8, "reward_margin": s / 5} for s in range(1, 11)]}
    for run, records in curves.items():
        (folder / run).mkdir()
        (folder / run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def write_eval_results(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "cloze": {"kind": "multiple_choice", "n": 24, "acc": 0.5, "acc_stderr": 0.1, "acc_norm": 0.45,
                  "acc_norm_stderr": 0.1, "chance": 0.25, "num_fewshot": 0},
        "arithmetic": {"kind": "generate", "n": 24, "exact_match": 0.125, "exact_match_stderr": 0.07,
                       "num_fewshot": 3},
        "heldout": {"kind": "perplexity", "n": 12, "bits_per_byte": 2.5, "bytes": 9000,
                    "by_group": {"code": {"bits_per_byte": 2.0, "bytes": 3000, "n": 4},
                                 "web": {"bits_per_byte": 2.75, "bytes": 6000, "n": 8}}},
    }))


def test_full_run_draws_every_section(full_run):
    html = write_report(full_run).read_text()
    found = sections(html)
    assert "130 records read; 76.9% of them were pages" in found["crawl"] and "status_4xx" in found["crawl"]
    assert list(found) == [anchor for anchor, *_ in SECTIONS]
    for anchor, body in found.items():
        assert ABSENT not in body, anchor
        assert drawn(body), anchor
    assert_offline(html)
    assert "100 records read = 52 kept + 48 dropped + 0 dead-lettered: the identity holds" in html
    assert "abc123" in html and "pretrain-fp" in html and "tok-fp" in html
    assert "22.5 s (curate 20.0 s, tokenizer 2.5 s)" in html
    assert "threshold, keep-only = 0.5" in found["classifiers"]
    assert "threshold, relabels domain = 0.5" in found["classifiers"]
    assert found["classifiers"].count("52 documents passed, 20 dropped") == 2
    assert "packed tokens, 10.00% padding" in found["packing"]
    assert "EMAIL_ADDRESS" in found["pii"] and "replaced in the rejected sink" in found["pii"]
    assert ">3-4</text>" in found["duplicates"] and ">pii_rejected</text>" not in found["funnel"]
    assert html.count('href="#') == len(SECTIONS)  # the table of contents
    assert "0.500 ± 0.196" in found["evaluation"] and "3-shot" in found["evaluation"]
    assert "heldout / web" in found["evaluation"] and "2.750" in found["evaluation"]
    assert "2.2500 ± 0.1250" in found["ablation"] and "10,240 tokens per seed" in found["ablation"]
    assert "0.500 to 0.940" in found["side_by_side"] and "A = runs/new, B = runs/old" in found["side_by_side"]
    assert "accuracy 0.985 over 67 pairs" in found["rlhf"] and "REINFORCE: KL to the SFT reference" in found["rlhf"]
    assert ">reinforce</td>" in found["rlhf"] and ">0.790<" in found["rlhf"]


def test_a_bare_eval_output_folder_and_a_malformed_results_file(tmp_path):
    write_eval_results(tmp_path / "evals" / "results.json")
    found = sections(write_report(tmp_path / "evals").read_text())
    assert drawn(found["evaluation"]) and ABSENT in found["funnel"]
    (tmp_path / "evals" / "results.json").write_text(json.dumps({"cloze": {"kind": "quiz", "n": 3}}))
    with pytest.raises(ReportInputError, match=r"results\.json.*task 'cloze': needs a known 'kind'"):
        write_report(tmp_path / "evals")


@pytest.mark.slow  # a real (tiny) curate run: Beam start-up
def test_bare_curate_output(fixture_corpus, tmp_path):
    from gemmaflow.pipeline.config import CurateConfig
    from gemmaflow.pipeline.jobs.curate import run_curate

    out = tmp_path / "curated"
    # PII (spaCy start-up) and classifiers off, to keep this quick: the full run covers their sections.
    config = CurateConfig()
    config = dataclasses.replace(config, pii=dataclasses.replace(config.pii, enabled=False),
                                 classify=dataclasses.replace(config.classify, enabled=False))
    run_curate([str(fixture_corpus)], str(out), config, echo=False)
    assert main(["report", str(out)]) == 0
    html = (out / "report.html").read_text()
    found = sections(html)
    for anchor in ("funnel", "lengths", "languages", "domains", "throughput"):
        assert drawn(found[anchor]), anchor
    for anchor in ("pii", "classifiers", "tokenizer", "packing", "training"):
        assert ABSENT in found[anchor], anchor
    assert "15 records read = 6 kept + 6 dropped + 3 dead-lettered" in html
    assert "invalid_json" in found["funnel"]  # dead letters are part of the funnel
    assert_offline(html)


def test_malformed_stats_names_the_file(tmp_path, capsys):
    (tmp_path / "stats.json").write_text('{"stages": [')
    with pytest.raises(ReportInputError, match=r"stats\.json: not valid JSON"):
        write_report(tmp_path)
    assert main(["report", str(tmp_path)]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "stats.json" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("stage", "message"),
    [({"stage": "read", "docs_in": 3, "bytes_in": 0, "bytes_kept": 0, "dropped": {}, "dead_lettered": {}},
      "stage 'read': 'kept' must be a non-negative integer"),
     ({"stage": "read", "docs_in": 3, "bytes_in": 0, "kept": 3, "bytes_kept": 0, "dropped": {"x": "2"},
       "dead_lettered": {}}, "stage 'read': 'dropped' must map names to non-negative integers")],
)
def test_stats_with_a_bad_field_names_it(tmp_path, stage, message):
    (tmp_path / "stats.json").write_text(json.dumps({"run": {}, "accounting": {}, "stages": [stage]}))
    with pytest.raises(ReportInputError, match=re.escape(message)):
        write_report(tmp_path)


def test_malformed_metrics_line_is_named(full_run):
    with (full_run / "pretrain" / "metrics.jsonl").open("a") as fh:
        fh.write('{"step": 21, "loss": \n')
    with pytest.raises(ReportInputError, match=r"pretrain/metrics\.jsonl:\d+: not valid JSON"):
        write_report(full_run)


def test_wrong_manifest_and_empty_folder_are_errors(full_run, tmp_path):
    (full_run / "shards" / "manifest.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ReportInputError, match=r"shards/manifest\.json: not a gemmaflow shard manifest"):
        write_report(full_run)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportInputError, match="no run files found"):
        write_report(tmp_path / "empty")


def test_only_training_metrics_is_enough(tmp_path):
    write_metrics(tmp_path / "pretrain" / "metrics.jsonl", 6)
    out = tmp_path / "new" / "elsewhere.html"
    assert main(["report", str(tmp_path), "--out", str(out)]) == 0
    found = sections(out.read_text())
    assert drawn(found["training"])
    assert ABSENT in found["funnel"] and ABSENT in found["tokenizer"]


def test_nice_ticks_cover_the_range():
    for low, high in ((0, 331), (0, 1), (2.3, 7.9), (0, 0), (0, 4_750_000)):
        ticks = nice_ticks(low, high)
        assert ticks[0] <= low and ticks[-1] >= high and 2 <= len(ticks) <= 8


def test_number_labels():
    assert [format_number(v) for v in (0, 0.25, 12, 9500, 10_000, 125_000, 4_750_000, 2e9)] == [
        "0", "0.25", "12", "9,500", "10k", "125k", "4.75M", "2G"
    ]


def test_charts_draw_one_mark_per_value():
    bars = bar_chart(["a", "b", "c"], {"x": [1, 0, 3], "y": [2, 2, 2]}, title="t", x_label="X", y_label="Y")
    assert bars.count('class="mark"') == 5  # zero-height bars are not drawn
    stacked = bar_chart(["a", "b"], {"x": [1, 2], "y": [3, 0]}, title="t", x_label="X", y_label="Y",
                        stacked=True, horizontal=True)
    assert stacked.count('class="mark"') == 3 and ">x</text>" in stacked  # legend for two series
    hist = histogram([0, 0.5, 1], {"s": [3, 1]}, title="h", x_label="X", y_label="Y", thresholds={"cut": 0.5})
    assert hist.count('class="mark"') == 2 and "cut = 0.5" in hist and "stroke-dasharray" in hist
    line = line_chart({"train": [(1, 3.0), (2, 2.0)], "val": []}, title="l", x_label="X", y_label="Y")
    assert line.count("<polyline") == 1 and line.count("<circle") == 2
    for svg in (bars, stacked, hist, line):
        assert svg.startswith("<svg") and svg.endswith("</svg>") and "<title>" in svg


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium is not installed")
def test_chromium_renders_the_report(full_run, tmp_path):
    write_report(full_run)
    png = tmp_path / "report.png"
    subprocess.run(["bash", str(SCRIPT), str(full_run / "report.html"), str(png), "3000"], check=True, timeout=60)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000
