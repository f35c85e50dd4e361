//! The generated skeleton of bpf/loss.bpf.c (built by build.rs into OUT_DIR).
#![allow(
    clippy::all,
    missing_docs,
    non_camel_case_types,
    dead_code,
    unused_imports
)]

pub mod loss {
    include!(concat!(env!("OUT_DIR"), "/loss.skel.rs"));
}
