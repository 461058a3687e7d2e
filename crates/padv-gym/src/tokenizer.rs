//! tokenizer (WORLD engineer; in progress).
