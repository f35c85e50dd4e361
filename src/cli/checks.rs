//! Usage checks clap cannot express (repeated flags, a process that must exist), and
//! the one-line form of every usage error: `dnsdoc: error: WHAT (usage: ...)`, exit 64.

use std::collections::HashSet;

use clap::error::ErrorKind;
use clap::CommandFactory;

use super::{CaptureArgs, Cli, Command};
use crate::capture::MAX_PORTS;

/// Smallest and largest kernel ring buffer dnsdoc asks for.
pub const RING_MIN: u32 = 4096;
pub const RING_MAX: u32 = 1 << 30;

impl Cli {
    /// Checks what parsing alone cannot; the error names the subcommand's usage.
    pub fn check(&self) -> Result<(), clap::Error> {
        let (name, capture) = match &self.command {
            Command::Watch(w) => ("watch", &w.capture),
            Command::Doctor(d) if d.snapshot.is_none() => ("doctor", &d.capture),
            Command::Top(t) => ("top", &t.capture),
            Command::Serve(v) => ("serve", &v.capture),
            _ => return Ok(()),
        };
        capture.check().map_err(|msg| {
            let mut cmd = Cli::command();
            // Built, subcommands know their full name ("dnsdoc watch") for the usage.
            cmd.build();
            let sub = cmd.find_subcommand_mut(name).expect("a subcommand");
            sub.error(ErrorKind::ValueValidation, msg)
        })
    }
}

impl CaptureArgs {
    fn check(&self) -> Result<(), String> {
        if self.pcap.is_some() {
            return Ok(());
        }
        if self.ports.len() > MAX_PORTS {
            return Err(format!(
                "--port: at most {MAX_PORTS} ports can be watched, got {}",
                self.ports.len()
            ));
        }
        let mut seen = HashSet::new();
        if let Some(dup) = self.ports.iter().find(|p| !seen.insert(**p)) {
            return Err(format!("--port {dup} is given twice"));
        }
        if let Some(pid) = self
            .pids
            .iter()
            .find(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
        {
            return Err(format!("--pid {pid}: no such process"));
        }
        Ok(())
    }
}

/// `--ring-buffer-bytes`: a size the kernel gets as asked (up to the next power of
/// two), never one dnsdoc would silently clamp. Bytes, or with a binary unit: `4M`,
/// `4MiB`, `512K`, `1G` (K = 1024).
pub fn parse_ring_bytes(s: &str) -> Result<u32, String> {
    let n = parse_size::Config::new()
        .with_binary()
        .parse_size(s.trim())
        .map_err(|_| format!("'{s}' is not a size (bytes, or with a unit: 512K, 4M, 1G)"))?;
    if n < u64::from(RING_MIN) || n > u64::from(RING_MAX) {
        return Err(format!(
            "must be between {RING_MIN} and {RING_MAX} bytes (4K to 1G)"
        ));
    }
    Ok(n as u32)
}

/// `--top`: rows per table, 1 to 10000.
pub fn parse_top(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n @ 1..=10_000) => Ok(n),
        _ => Err("must be a number of rows from 1 to 10000".into()),
    }
}

/// `--max-pending`: at least one query must be trackable.
pub fn parse_max_pending(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1 (0 would track no query at all)".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("'{s}' is not a count")),
    }
}

/// A parse or usage error as one line: clap's message, its hints, and the usage of the
/// subcommand `args` name (clap leaves the usage out of some errors).
pub fn one_line(e: &clap::Error, args: &[String]) -> String {
    let text = e.render().to_string();
    let mut lines = text.lines();
    let first = lines
        .next()
        .unwrap_or("invalid usage")
        .trim_start_matches("error: ")
        .to_string();
    let mut hints = Vec::new();
    let mut usage = None;
    for l in lines {
        let l = l.trim();
        if let Some(u) = l.strip_prefix("Usage: ") {
            usage = Some(u.to_string());
        } else if !l.is_empty() && !l.starts_with("For more information") {
            hints.push(l.to_string());
        }
    }
    let mut out = format!("dnsdoc: error: {first}");
    for h in hints {
        out.push(' ');
        out.push_str(&h);
    }
    match usage.or_else(|| usage_of(args)) {
        Some(u) => out.push_str(&format!(" (usage: {u}; see --help)")),
        None => out.push_str(" (see dnsdoc --help)"),
    }
    out
}

/// "dnsdoc watch [OPTIONS]" for the first subcommand named in `args`.
fn usage_of(args: &[String]) -> Option<String> {
    let mut cmd = Cli::command();
    cmd.build();
    let name = args
        .iter()
        .skip(1)
        .find(|a| cmd.find_subcommand(a.as_str()).is_some())?;
    let sub = cmd.find_subcommand_mut(name.as_str())?;
    let usage = sub.render_usage().to_string();
    Some(usage.trim().trim_start_matches("Usage: ").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn check(args: &[&str]) -> Result<(), String> {
        let mut v = vec!["dnsdoc", "watch"];
        v.extend_from_slice(args);
        let argv: Vec<String> = v.iter().map(ToString::to_string).collect();
        let cli = Cli::try_parse_from(&v).map_err(|e| one_line(&e, &argv))?;
        cli.check().map_err(|e| one_line(&e, &argv))
    }

    #[test]
    fn ring_sizes_take_binary_units_and_stay_in_range() {
        assert_eq!(parse_ring_bytes("4096"), Ok(4096));
        assert_eq!(parse_ring_bytes("512K"), Ok(512 << 10));
        assert_eq!(parse_ring_bytes("4M"), Ok(4 << 20));
        assert_eq!(parse_ring_bytes("4MiB"), Ok(4 << 20));
        assert_eq!(parse_ring_bytes("1G"), Ok(1 << 30));
        assert!(parse_ring_bytes("2G").unwrap_err().contains("between"));
        assert!(parse_ring_bytes("1K").unwrap_err().contains("between"));
        assert!(parse_ring_bytes("lots").unwrap_err().contains("not a size"));
    }

    #[test]
    fn usage_errors_are_one_line_with_the_usage() {
        let e = check(&["-p", "53", "-p", "53"]).unwrap_err();
        assert!(
            e.starts_with("dnsdoc: error: --port 53 is given twice"),
            "{e}"
        );
        assert!(e.contains("usage: dnsdoc watch"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let many: Vec<String> = (1..=9).map(|p| p.to_string()).collect();
        let mut args = Vec::new();
        for p in &many {
            args.extend(["-p", p.as_str()]);
        }
        assert!(check(&args).unwrap_err().contains("at most 8 ports"));
        assert!(check(&["--pid", "4000000000"]).is_err());
        assert!(check(&["--pid", &std::process::id().to_string()]).is_ok());
        let e = check(&["--max-pending", "0"]).unwrap_err();
        assert!(e.contains("at least 1"), "{e}");
        assert!(e.contains("usage: dnsdoc watch"), "{e}");
        assert!(check(&["--ring-buffer-bytes", "100"]).is_err());
        assert!(check(&["--ring-buffer-bytes", "4294967295"]).is_err());
        assert!(check(&["--ring-buffer-bytes", "8192"]).is_ok());
        let e = check(&["--bogus"]).unwrap_err();
        assert!(
            e.starts_with("dnsdoc: error: unexpected argument '--bogus'"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
    }
}
