//! Compiles each `bpf/*.bpf.c` and generates its Rust skeleton into OUT_DIR.
use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const PROGRAMS: &[&str] = &["owner", "capture", "loss"];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("CARGO_CFG_TARGET_ARCH is set by cargo");
    // clang -target bpf does not search Debian's multiarch include dir on its own.
    let multiarch = format!("-I/usr/include/{arch}-linux-gnu");

    for name in PROGRAMS {
        let src = format!("bpf/{name}.bpf.c");
        SkeletonBuilder::new()
            .source(&src)
            .clang_args([multiarch.as_str(), "-Ibpf", "-Wall", "-O2"])
            .build_and_generate(out.join(format!("{name}.skel.rs")))
            .unwrap_or_else(|e| panic!("building {src}: {e:#}"));
        println!("cargo:rerun-if-changed={src}");
    }
    // Shared headers (dnsdoc.h, *.bpf.h) too: watch the whole directory.
    println!("cargo:rerun-if-changed=bpf");
    git_commit();
}

/// DNSDOC_GIT_COMMIT for `dnsdoc -V` and `dnsdoc version`: the commit built, "-dirty"
/// when the tree had changes, "unknown" outside a git checkout. A packager may set it.
fn git_commit() {
    println!("cargo:rerun-if-env-changed=DNSDOC_GIT_COMMIT");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = env::var("DNSDOC_GIT_COMMIT").ok().or_else(|| {
        let head = git(&["rev-parse", "--short=12", "HEAD"])?;
        // Rebuild when HEAD moves (a commit, a checkout) or the index changes.
        for path in ["HEAD", "index"] {
            if let Some(p) = git(&["rev-parse", "--git-path", path]) {
                println!("cargo:rerun-if-changed={p}");
            }
        }
        if let Some(p) = git(&["rev-parse", "--git-common-dir"]) {
            println!("cargo:rerun-if-changed={p}/refs/heads");
        }
        let dirty =
            git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
        Some(if dirty { format!("{head}-dirty") } else { head })
    });
    println!(
        "cargo:rustc-env=DNSDOC_GIT_COMMIT={}",
        commit.unwrap_or_else(|| "unknown".into())
    );
}
