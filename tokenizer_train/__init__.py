"""SentencePiece tokenizer training from curated Parquet, with Gemma's conventions."""
