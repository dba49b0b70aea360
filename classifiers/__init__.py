"""fastText classifiers (domain, quality, safety): training, evaluation, model cards, inference helpers."""
