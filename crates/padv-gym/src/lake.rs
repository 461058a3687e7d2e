//! lake (WORLD engineer; in progress).
