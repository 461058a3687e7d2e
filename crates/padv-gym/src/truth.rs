//! truth (WORLD engineer; in progress).
