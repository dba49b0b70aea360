"""Per-choice log-likelihoods equal Hugging Face transformers' for the same weights.

The model is exported with `save_pretrained(format="hf")` and loaded by transformers' own
`GemmaForCausalLM` (PyTorch, float32); each choice's log-likelihood is computed there from the
harness's definition (the same token ids, log-softmax, sum over the continuation).
"""

from __future__ import annotations

import numpy as np
import pytest

from gemmaflow.model import GemmaLM
from gemmaflow.model.config import preset
from gemmaflow.model.eval_tasks import load_items, load_task_spec
from gemmaflow.model.evaluate import ScoringStats, choice_request, multiple_choice
from tests.model.planted import facts, train_tokenizer, write_task
from tests.model.utils import random_params


def hf_logliks(folder, requests) -> list[float]:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")

    model = transformers.GemmaForCausalLM.from_pretrained(folder, dtype=torch.float32,
                                                          attn_implementation="eager").eval()
    results = []
    with torch.no_grad():
        for request in requests:
            sequence = [*request.context, *request.continuation]
            logits = model(torch.tensor([sequence[:-1]])).logits[0].double()
            logprobs = torch.log_softmax(logits, dim=-1)
            n = len(request.continuation)
            positions = torch.arange(len(sequence) - 1 - n, len(sequence) - 1)
            results.append(float(logprobs[positions, torch.tensor(request.continuation)].sum()))
    return results


def test_choice_log_likelihoods_match_transformers(tmp_path):
    pairs = facts()
    tokenizer = train_tokenizer(tmp_path / "tokenizer", pairs)
    config = preset("tiny", vocab_size=128, num_layers=2, num_heads=4, num_kv_heads=2)
    lm = GemmaLM(config, random_params(config, seed=3, block_gain=2.0), tokenizer)
    lm.save_pretrained(tmp_path / "hf", format="hf")
    spec = load_task_spec(write_task(tmp_path / "tasks", pairs[:12]))
    items = load_items(spec)
    ours = multiple_choice(lm, spec, items, batch_size=5, stats=ScoringStats())
    requests = [choice_request(lm, item.context, " " + choice) for item in items for choice in item.choices]
    theirs = np.array(hf_logliks(tmp_path / "hf", requests)).reshape(len(items), 4)
    mine = np.array([sample["loglik"] for sample in ours.samples])
    assert np.abs(mine - theirs).max() < 1e-4
    assert np.ptp(theirs, axis=1).min() > 1e-3  # the choices differ, so agreement is not trivial
