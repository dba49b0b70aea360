"""Gemma's special tokens and chat template: the one definition every room shares.

The tokenizer trainer places these pieces at these ids, SFT packing lays conversations out in
this template, the sampler stops on these ids and the generate command and the demo wrap prompts
in it; a model trained on the shards and prompted at generation time only behaves if all of them
agree, so none of them spells the pieces, ids or template text itself.

Ids and pieces are those of Gemma's released SentencePiece tokenizer (Gemma report, 2024): pad 0,
eos 1, bos 2, unk 3, `<mask>` 4, reserved `<unusedN>` control pieces from 5, `<start_of_turn>` 106
and `<end_of_turn>` 107. The chat format is Gemma's instruction-tuned one: exactly one BOS, then
per turn `<start_of_turn>{role}\\n{text}<end_of_turn>\\n`, with the roles `user` and `model` (no
system role), e.g.

    <bos><start_of_turn>user\\n{prompt}<end_of_turn>\\n<start_of_turn>model\\n{answer}<end_of_turn>\\n

BOS is a control piece (it never encodes from text), so the text helpers below leave it out: the
caller adds its id when encoding.
"""

from __future__ import annotations

PAD_PIECE = "<pad>"
EOS_PIECE = "<eos>"
BOS_PIECE = "<bos>"
UNK_PIECE = "<unk>"
MASK_PIECE = "<mask>"
START_OF_TURN = "<start_of_turn>"
END_OF_TURN = "<end_of_turn>"

PAD_ID = 0
EOS_ID = 1
BOS_ID = 2
UNK_ID = 3
MASK_ID = 4
START_OF_TURN_ID = 106
END_OF_TURN_ID = 107

# The four pieces SentencePiece places itself (its pad/eos/bos/unk settings), in Gemma's id order.
CORE_PIECES = (PAD_PIECE, EOS_PIECE, BOS_PIECE, UNK_PIECE)

USER = "user"
MODEL = "model"
ROLE_END = "\n"  # ends the role name after <start_of_turn>
TURN_END = "\n"  # follows each <end_of_turn>


def role_header(role: str) -> str:
    """The text between `<start_of_turn>` and a turn's body: the role and its line break."""
    return role + ROLE_END


def render_turn(role: str, text: str) -> str:
    """One whole turn as text: `<start_of_turn>{role}\\n{text}<end_of_turn>\\n`."""
    return START_OF_TURN + role_header(role) + text + END_OF_TURN + TURN_END


def generation_prompt(prompt: str) -> str:
    """A single user turn followed by the opened model turn, so the model's continuation is its answer.

    BOS is not included: tokenizers add it by id when encoding (see the module docstring).
    """
    return render_turn(USER, prompt) + START_OF_TURN + role_header(MODEL)
