//! analysis (WORLD engineer; in progress).
