//! Temporary directories for the tests' files, removed on drop.

use std::path::Path;

/// A temporary directory (tempfile's, named `dnsdoc-NAME-...`), removed on drop.
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("dnsdoc-{name}-"))
            .tempdir()
            .expect("create a temporary directory");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// Writes `text` to the file `name` in this directory; returns its path as a string.
    pub fn write(&self, name: &str, text: &str) -> String {
        let p = self.path().join(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p.display().to_string()
    }
}
