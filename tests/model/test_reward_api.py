"""`GemmaRewardModel` on text: the token layout `gemmaflow prefs` writes, batching, and its use as the sxs judge."""

import shutil

import jax
import numpy as np
import pytest

from gemmaflow.core.chat import MODEL, USER
from gemmaflow.model.checkpoint import save_model
from gemmaflow.model.config import preset
from gemmaflow.model.gemma import init_params
from gemmaflow.model.objectives import REWARD_HEAD, init_reward_head
from gemmaflow.model.reward import GemmaRewardModel
from gemmaflow.model.sxs import SxsPrompt, load_judge, side_by_side
from gemmaflow.model.weights import TOKENIZER_FILE
from gemmaflow.pipeline.sft import ChatTokens, format_conversations
from tests.pipeline.test_pack_tokenizer import tiny_tokenizer  # noqa: F401 (fixture: has Gemma's turn pieces)

CONFIG = preset("tiny", vocab_size=600, num_layers=1)


@pytest.fixture(scope="module")
def reward_model(tiny_tokenizer):  # noqa: F811
    params = {**init_params(CONFIG, jax.random.key(0)), REWARD_HEAD: init_reward_head(CONFIG, jax.random.key(1))}
    return GemmaRewardModel(CONFIG, params, tokenizer=tiny_tokenizer, batch_size=4)


def test_text_is_encoded_token_for_token_as_gemmaflow_prefs_writes_it(reward_model):
    processor = reward_model.tokenizer
    [(tokens, mask)] = format_conversations([((USER, "What is 2 + 3?"), (MODEL, "The sum is 5."))],
                                            lambda texts: processor.encode(texts),
                                            ChatTokens.from_processor(processor), last_answer_only=True)
    through_end_of_turn = tokens[: np.flatnonzero(mask)[-1] + 1].tolist()
    assert reward_model.encode(" What is 2 + 3? ", "The sum is 5.\n") == through_end_of_turn


def test_scores_do_not_depend_on_batching_or_padding(reward_model):
    prompts = [f"Question {i}?" for i in range(7)]
    answers = [f"Answer number {i} " * (1 + i % 3) for i in range(7)]
    together = reward_model.score(prompts, answers)
    alone = [reward_model.score([p], [a])[0] for p, a in zip(prompts, answers, strict=True)]
    np.testing.assert_allclose(together, alone, atol=1e-5)
    with pytest.raises(ValueError, match="7 prompts but 1 answers"):
        reward_model.score(prompts, answers[:1])


def test_the_reward_model_judges_side_by_side_in_either_order(reward_model, tiny_tokenizer, tmp_path):  # noqa: F811
    triples = [("Say hi", "hi there", "no"), ("Add 1 and 1", "2", "11")]
    forward = reward_model.judge_batch(triples)
    backward = reward_model.judge_batch([(p, b, a) for p, a, b in triples])
    np.testing.assert_allclose(np.add(forward, backward), 1.0, atol=1e-6)
    folder = tmp_path / "rm"
    save_model(folder, reward_model.config, reward_model.params)
    with pytest.raises(ValueError, match=r"no tokenizer\.model"):
        load_judge(f"reward:{folder}")
    shutil.copyfile(tiny_tokenizer, folder / TOKENIZER_FILE)
    judge = load_judge(f"reward:{folder}")
    prompts = [SxsPrompt(0, "Say hi", "chat"), SxsPrompt(1, "Add 1 and 1", "math")]
    result = side_by_side(prompts, ["hi there", "2"], ["no", "11"], judge)
    expected = [(f + (1 - b)) / 2 for f, b in zip(forward, backward, strict=True)]
    assert [s["score_a"] for s in result.samples] == pytest.approx(expected, abs=1e-5)


def test_a_tokenizer_without_gemma_turn_pieces_is_refused(planted_tokenizer):
    model = GemmaRewardModel(CONFIG, {**init_params(CONFIG, jax.random.key(0)),
                                      REWARD_HEAD: init_reward_head(CONFIG, jax.random.key(1))},
                             tokenizer=planted_tokenizer)
    with pytest.raises(ValueError, match="no <start_of_turn> piece"):
        model.score(["hi"], ["there"])
