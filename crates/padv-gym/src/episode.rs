//! episode (WORLD engineer; in progress).
