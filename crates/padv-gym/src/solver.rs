//! solver (WORLD engineer; in progress).
