"""Gemma's chat contract, pinned as literal text: a change here changes every room's data and prompts."""

from gemmaflow.core import chat


def test_ids_and_pieces_are_gemmas():
    assert chat.CORE_PIECES == ("<pad>", "<eos>", "<bos>", "<unk>")
    assert (chat.PAD_ID, chat.EOS_ID, chat.BOS_ID, chat.UNK_ID, chat.MASK_ID) == (0, 1, 2, 3, 4)
    assert (chat.MASK_PIECE, chat.START_OF_TURN, chat.END_OF_TURN) == ("<mask>", "<start_of_turn>", "<end_of_turn>")
    assert (chat.START_OF_TURN_ID, chat.END_OF_TURN_ID) == (106, 107)


def test_turns_and_generation_prompt_follow_gemmas_template():
    conversation = chat.render_turn(chat.USER, "Hi?") + chat.render_turn(chat.MODEL, "Hello.")
    assert conversation == "<start_of_turn>user\nHi?<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n"
    assert chat.generation_prompt("Hi?") == "<start_of_turn>user\nHi?<end_of_turn>\n<start_of_turn>model\n"
