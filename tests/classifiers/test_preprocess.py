from gemmaflow.classifiers.data import Example
from gemmaflow.classifiers.model import Classifier
from gemmaflow.classifiers.preprocess import LINE_BREAK, preprocess
from gemmaflow.classifiers.train import _write_fasttext_file


def test_tokens_punctuation_and_line_breaks():
    assert preprocess("Hello, World!\n\n  int x = a[i];") == f"hello , world ! {LINE_BREAK} int x = a [ i ] ;"
    assert preprocess("$\\frac{a}{b}$") == "$ \\ frac { a } { b } $"
    assert preprocess("") == ""
    assert preprocess("caf\ufffd ok") == "caf ok"  # decoding damage is the heuristics' business


def test_reads_only_the_prefix():
    assert preprocess("abc def ghi", max_chars=5) == "abc d"


def test_training_file_and_prediction_use_the_same_preprocessing(tmp_path, domain_model):
    text = "Some TEXT,\nwith lines; and {code}\n" * 300
    path = tmp_path / "train.txt"
    _write_fasttext_file([Example(text, "web", "g")], path, max_chars=1234)
    assert path.read_text(encoding="utf-8") == f"__label__web {preprocess(text, 1234)}\n"
    model = Classifier(domain_model)
    assert model.max_chars == model.card.preprocessing["max_chars"]
    assert model.preprocess([text]) == [preprocess(text, model.max_chars)]
    assert (model.predict_proba([text]) == model.predict_lines([preprocess(text, model.max_chars)])).all()
