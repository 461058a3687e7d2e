//! expert (WORLD engineer; in progress).
