//! dnsdoc: a DNS doctor for Linux nodes, built on eBPF.
//!
//! Data flows one way, one module per stage, plain data types between them:
//!
//! 1. [`capture`]: BPF programs (bpf/*.bpf.c) attached to a cgroup emit one event per
//!    DNS packet into a ring buffer; the loader decodes them into `PacketEvent`s.
//! 2. [`analysis`]: TCP reassembly and DNS parsing turn packets into messages; the
//!    matcher pairs queries and responses into transactions; the aggregator folds them.
//! 3. [`snapshot`]: the result of one window, a documented JSON format.
//! 4. [`render`]: text for people.
//!
//! [`pipeline`] drives stages 1-3 for one window; the commands ([`watch`], [`doctor`],
//! [`chaos`], [`version`]) call it and render. See docs/ARCHITECTURE.md.

pub mod alerts;
pub mod analysis;
pub mod capture;
pub mod chaos;
pub mod cli;
pub mod codes;
pub mod doctor;
pub mod exit;
pub mod host;
pub mod offline;
pub mod pipeline;
pub mod render;
pub mod rules;
pub mod series;
pub mod serve;
pub mod signals;
pub mod snapshot;
pub mod sockets;
pub mod top;
pub mod units;
pub mod version;
pub mod watch;
