//! soft (WORLD engineer; in progress).
