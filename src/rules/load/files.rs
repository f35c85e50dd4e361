//! Finding and reading rule files on disk: a file, or the `*.toml` files of a
//! directory in name order. Rule tests (`*.test.toml`) use the same listing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::diag::Diag;

/// Rule files of a path: the file itself, or every `*.toml` of a directory except rule
/// tests (`*.test.toml`), in name order.
pub(crate) fn rule_files(path: &Path) -> Result<Vec<PathBuf>, Vec<Diag>> {
    files_of(
        path,
        |name| name.ends_with(".toml") && !name.ends_with(".test.toml"),
        "no rule files (*.toml, other than *.test.toml) in this directory",
    )
}

/// True when `path` is a directory without rule files: an empty rules.d is normal.
pub(crate) fn is_empty_rule_dir(path: &Path) -> bool {
    path.is_dir()
        && std::fs::read_dir(path).is_ok_and(|entries| {
            !entries.filter_map(Result::ok).any(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                e.path().is_file() && name.ends_with(".toml") && !name.ends_with(".test.toml")
            })
        })
}

/// The file `path` itself, or the regular files of directory `path` whose names pass
/// `wanted`, in name order; `none` is the error when the directory has none.
pub(crate) fn files_of(
    path: &Path,
    wanted: impl Fn(&str) -> bool,
    none: &str,
) -> Result<Vec<PathBuf>, Vec<Diag>> {
    let whole = |msg: String| {
        vec![Diag {
            file: path.display().to_string(),
            line: 0,
            col: 0,
            message: msg,
        }]
    };
    let meta = std::fs::metadata(path).map_err(|e| whole(format!("cannot read: {e}")))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| whole(format!("cannot list directory: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| wanted(&n.to_string_lossy())))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(whole(none.into()));
    }
    Ok(files)
}

/// Reads the rule files of `path` (see [`rule_files`]): (file name, text) pairs.
pub(super) fn read_layer(path: &Path) -> Result<Vec<(Arc<str>, String)>, Vec<Diag>> {
    rule_files(path)?
        .into_iter()
        .map(|p| {
            let name = p.display().to_string();
            std::fs::read_to_string(&p)
                .map(|text| (Arc::from(name.as_str()), text))
                .map_err(|e| {
                    vec![Diag {
                        file: name.clone(),
                        line: 0,
                        col: 0,
                        message: format!("cannot read rule file: {e}"),
                    }]
                })
        })
        .collect()
}
