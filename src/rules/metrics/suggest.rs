//! "Did you mean" hints: how far a misspelt name is from a known one.

/// Edit distance with adjacent transpositions (optimal string alignment), for "did
/// you mean" hints: "vaule" is one step from "value".
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    strsim::osa_distance(a, b)
}
