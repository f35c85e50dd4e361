//! node_exporter's textfile collector: `DIR/dnsdoc.prom`, replaced atomically (a
//! temporary file in DIR, fsync, rename) so the collector never reads half a file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::expose::{encode, Format, Meta};
use super::Series;

/// The file name node_exporter reads (it reads every `*.prom` in its directory).
pub const FILE_NAME: &str = "dnsdoc.prom";

/// Writes `series` to `dir/dnsdoc.prom` atomically; returns the path.
pub fn write(dir: &Path, series: &Series) -> Result<PathBuf> {
    let path = dir.join(FILE_NAME);
    // A name node_exporter ignores (not *.prom) while it is being written.
    let tmp = dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
    let text = encode(series, &Meta::current(), Format::Prometheus);
    let write = || -> Result<()> {
        let mut f =
            fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    };
    write().inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::Limits;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Series::new(Limits::default());
        write(dir.path(), &s).unwrap();
        s.windows = 7;
        let path = write(dir.path(), &s).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("dnsdoc_windows_total 7\n"), "{text}");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![FILE_NAME.to_string()]);
    }

    #[test]
    fn a_missing_directory_is_an_error_with_the_path() {
        let s = Series::new(Limits::default());
        let err = write(Path::new("/nonexistent/dnsdoc-dir"), &s).unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent/dnsdoc-dir"),
            "{err:#}"
        );
    }
}
