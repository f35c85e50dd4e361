//! The generated BPF skeletons (built by build.rs into OUT_DIR, never committed).
#![allow(
    clippy::all,
    missing_docs,
    non_camel_case_types,
    dead_code,
    unused_imports
)]

pub mod owner {
    include!(concat!(env!("OUT_DIR"), "/owner.skel.rs"));
}

pub mod capture {
    include!(concat!(env!("OUT_DIR"), "/capture.skel.rs"));
}
