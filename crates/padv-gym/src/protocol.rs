//! protocol (WORLD engineer; in progress).
