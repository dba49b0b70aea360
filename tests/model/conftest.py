"""Model tests run on the host CPU: the results, tolerances and timings here assume it."""

import os

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")


# The planted-facts model (tests/model/planted.py), trained once per session for the evaluation tests.
@pytest.fixture(scope="session")
def planted_pairs():
    from tests.model.planted import facts

    return facts()


@pytest.fixture(scope="session")
def planted_tokenizer(tmp_path_factory, planted_pairs):
    from tests.model.planted import train_tokenizer

    return train_tokenizer(tmp_path_factory.mktemp("planted-tokenizer"), planted_pairs)


@pytest.fixture(scope="session")
def planted_untrained(planted_tokenizer):
    from gemmaflow.model import GemmaLM

    return GemmaLM.from_preset("tiny", vocab_size=128, seed=0, tokenizer=planted_tokenizer, num_layers=2)


@pytest.fixture(scope="session")
def planted_trained(tmp_path_factory, planted_tokenizer, planted_pairs):
    from gemmaflow.model import GemmaLM
    from tests.model.planted import train_on_facts

    run = train_on_facts(tmp_path_factory.mktemp("planted"), planted_tokenizer, planted_pairs, steps=200)
    return GemmaLM.from_pretrained(run, tokenizer=planted_tokenizer)
