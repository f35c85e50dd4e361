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
}
