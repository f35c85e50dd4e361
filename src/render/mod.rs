//! Stage 6, report: turns snapshots (and later findings) into text for people.

pub mod findings;
pub mod style;
pub mod summary;
