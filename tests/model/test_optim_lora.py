import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gemmaflow.model import lora
from gemmaflow.model.config import tiny
from gemmaflow.model.gemma import init_params
from gemmaflow.model.optim import learning_rate_schedule, weight_decay_mask
from gemmaflow.model.train_config import LoraConfig, OptimizerConfig
from tests.model.utils import random_params

CONFIG = tiny(vocab_size=64, num_layers=1)


def test_cosine_schedule_warms_up_then_decays_to_the_final_fraction():
    schedule = learning_rate_schedule(OptimizerConfig(learning_rate=1.0, warmup_fraction=0.1), 100)
    assert float(schedule(0)) == 0.0 and float(schedule(5)) == pytest.approx(0.5)
    assert float(schedule(10)) == pytest.approx(1.0)
    assert float(schedule(55)) == pytest.approx(0.55, abs=1e-6)  # halfway down the cosine: (1 + 0.1) / 2
    assert float(schedule(100)) == pytest.approx(0.1)


def test_wsd_schedule_holds_the_peak_then_decays_linearly():
    config = OptimizerConfig(learning_rate=1.0, schedule="wsd", warmup_fraction=0.1, decay_fraction=0.2)
    schedule = learning_rate_schedule(config, 100)
    assert [float(schedule(s)) for s in (10, 50, 80)] == pytest.approx([1.0, 1.0, 1.0])
    assert float(schedule(90)) == pytest.approx(0.55) and float(schedule(100)) == pytest.approx(0.1)


def test_weight_decay_skips_norms_and_embeddings_unless_asked():
    params = jax.eval_shape(functools.partial(init_params, CONFIG), jax.random.key(0))
    mask = weight_decay_mask(params, OptimizerConfig())
    assert not mask["embedder"]["embedding"] and not mask["final_norm"]["scale"]
    assert not mask["layers_0"]["pre_ffw_norm"]["scale"] and mask["layers_0"]["attention"]["query"]
    everything = weight_decay_mask(params, OptimizerConfig(decay_norms=True, decay_embeddings=True))
    assert all(jax.tree.leaves(everything))


def test_lora_starts_as_the_base_and_adds_a_scaled_low_rank_update():
    params = random_params(CONFIG)
    config = LoraConfig(enabled=True, rank=2, alpha=6.0, targets=("query", "output", "up"))
    adapters = lora.init_lora(params, config, jax.random.key(0))
    assert sorted(adapters["layers_0"]["attention"]) == ["output", "query"]
    merged = lora.merge(params, adapters, config)
    for a, b in zip(jax.tree.leaves(merged), jax.tree.leaves(params), strict=True):
        np.testing.assert_array_equal(a, b)  # B starts at zero
    rng = np.random.default_rng(0)
    adapters = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape), jnp.float32), adapters)
    merged = lora.merge(params, adapters, config)
    q = adapters["layers_0"]["attention"]["query"]  # query [N, D, H]: inputs D, outputs N*H
    n, d, h = params["layers_0"]["attention"]["query"].shape
    delta = 3.0 * (q["a"] @ q["b"]).reshape(d, n, h).transpose(1, 0, 2)
    np.testing.assert_allclose(merged["layers_0"]["attention"]["query"],
                               params["layers_0"]["attention"]["query"] + delta, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(merged["layers_0"]["attention"]["key"], params["layers_0"]["attention"]["key"])
    assert lora.count(adapters) == sum(x.size for x in jax.tree.leaves(adapters))
