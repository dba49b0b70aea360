"""A small curated corpus in the curated Parquet schema: generated multi-domain text plus stdlib code.

Web documents are generated English prose and short documents in other scripts (CJK, Arabic,
Cyrillic, emoji); code is Python standard-library source read from the running interpreter; math is
generated LaTeX. Everything is seeded, so every test session sees the same corpus on one interpreter.
"""

from __future__ import annotations

import random
import sysconfig
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gemmaflow.pipeline.records import CURATED_SCHEMA, document_from_record
from gemmaflow.tokenizer_train.config import SampleConfig, TokenizerConfig, TrainerConfig

WORDS = (
    "the of and to in is was for that with as on by at from this which be are an or it has had not but "
    "system data model file line value number process time user network memory server table query page "
    "language people history river city music science theory energy market policy school water light "
    "during between because however although several important different public general national "
    "develop include provide require support measure describe produce remain consider increase "
    "quickly carefully often usually probably nearly simply directly finally recently"
).split()
OTHER_SCRIPTS = {
    "zh": "数据模型在训练之前需要仔细清洗。我们的城市有很多河流和公园，人们喜欢在周末散步。",
    "ja": "東京の天気は今日とても良いです。データを集めて、モデルを訓練しましょう。",
    "ar": "تعلم الآلة هو فرع من الذكاء الاصطناعي. المدينة جميلة في الربيع والنهر هادئ.",
    "ru": "Машинное обучение требует много данных. Река течёт через старый город весной.",
    "hi": "मशीन लर्निंग के लिए बहुत सारा डेटा चाहिए। नदी शहर के बीच से बहती है।",
}
EMOJI = "🎉🚀✨😀👍🏽🇫🇷"


def _prose(rng: random.Random, sentences: int) -> str:
    out = []
    for _ in range(sentences):
        words = [rng.choice(WORDS) for _ in range(rng.randint(6, 18))]
        if rng.random() < 0.3:
            words.insert(rng.randint(0, len(words)), str(rng.randint(0, 99999)))
        out.append(" ".join(words).capitalize() + rng.choice([".", ".", "?", "!"]))
    return " ".join(out)


def _latex(rng: random.Random) -> str:
    lines = [r"\section{Result " + str(rng.randint(1, 99)) + "}", _prose(rng, 2)]
    for _ in range(rng.randint(3, 8)):
        a, b, n = rng.choice("xyzabt"), rng.choice("uvwkmn"), rng.randint(2, 9)
        lines.append(
            rf"\begin{{equation}} \int_0^{{{n}}} {a}^{{{n}}} \, d{a} = \frac{{{b}^{{{n + 1}}}}}{{{n + 1}}} "
            rf"+ \sum_{{i=1}}^{{\infty}} \alpha_i {a}_i \end{{equation}}"
        )
        lines.append(_prose(rng, 1))
    return "\n".join(lines)


def stdlib_sources(limit: int = 40) -> list[tuple[str, str]]:
    """(name, text) of small standard-library modules of the running interpreter, sorted by name."""
    lib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(f for f in lib.glob("*.py") if 2000 < f.stat().st_size < 12000)[:limit]
    return [(f.name, f.read_text(encoding="utf-8", errors="replace")) for f in files]


def make_documents(seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    docs: list[tuple[str, str, str | None]] = []
    for _ in range(160):
        paragraphs = [_prose(rng, rng.randint(2, 6)) for _ in range(rng.randint(1, 4))]
        docs.append(("\n\n".join(paragraphs), "web", "en"))
    for i in range(60):
        lang = sorted(OTHER_SCRIPTS)[i % len(OTHER_SCRIPTS)]
        text = "\n".join(OTHER_SCRIPTS[lang] + " " + rng.choice(EMOJI) + str(rng.randint(0, 999)) for _ in range(8))
        docs.append((text, "web", lang))
    docs.extend((text, "code", None) for _, text in stdlib_sources())
    docs.append(("def f(x):\n\tif x:\n\t\treturn {'a': [1, 2]}\n\treturn None\n" * 20, "code", None))
    docs.extend((_latex(rng), "math", "en") for _ in range(90))
    rows = []
    for i, (text, domain, lang) in enumerate(docs):
        record = {"id": f"doc-{i:05d}", "text": text, "source": domain, "domain": domain}
        row = document_from_record(record, "fixture", i, "test")
        rows.append({**row, "lang": lang, "lang_score": 1.0 if lang else None})  # as the language stage sets them
    return rows


def write_curated(folder: Path, rows: list[dict[str, Any]], parts: int = 2) -> Path:
    """Write `rows` as a `gemmaflow curate` output folder: FOLDER/data/part-*.parquet."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for part in range(parts):
        chunk = rows[part::parts]
        pq.write_table(pa.Table.from_pylist(chunk, schema=CURATED_SCHEMA), folder / "data" / f"part-{part:05d}.parquet")
    return folder


def small_config(vocab_size: int = 1000, **sample: Any) -> TokenizerConfig:
    """Fast settings: a small vocabulary, two threads, a tenth of the documents held out."""
    sample_config = SampleConfig(**{"byte_budget": 10_000_000, "heldout_fraction": 0.1, **sample})
    return TokenizerConfig(sample=sample_config, trainer=TrainerConfig(vocab_size=vocab_size, threads=2))


@pytest.fixture(scope="session")
def curated_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_curated(tmp_path_factory.mktemp("curated"), make_documents())


@pytest.fixture(scope="session")
def trained(curated_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One tokenizer trained on the fixture corpus, shared by the tests that only read it."""
    from gemmaflow.tokenizer_train.job import train_tokenizer

    out = tmp_path_factory.mktemp("tokenizer")
    card = train_tokenizer(str(curated_dir), str(out), small_config())
    return out, card
