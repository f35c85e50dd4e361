//! Turns a BPF load failure into one honest line. libbpf prints the verifier's log
//! through a callback; we keep it instead of spilling hundreds of lines on stderr, write
//! it to a file on failure, and name the kernel, the program and the verifier's last
//! message. A rejection is a kernel limitation (exit 3), never a privilege problem.

use std::path::PathBuf;
use std::sync::Mutex;

use libbpf_rs::PrintLevel;

use crate::exit::CollectError;

/// libbpf's messages since [`capture_log`] was called (the callback is a plain `fn`).
static LOG: Mutex<String> = Mutex::new(String::new());

fn keep(_level: PrintLevel, msg: String) {
    if let Ok(mut log) = LOG.lock() {
        // Bounded: a verifier log is at most a few MB; keep the last 4 MiB.
        if log.len() > 4 << 20 {
            let cut = log.len() - (2 << 20);
            let cut = (cut..log.len())
                .find(|&i| log.is_char_boundary(i))
                .unwrap_or(0);
            log.drain(..cut);
        }
        log.push_str(&msg);
    }
}

/// Starts keeping libbpf's messages (verifier logs included) instead of printing them.
pub fn capture_log() {
    if let Ok(mut log) = LOG.lock() {
        log.clear();
    }
    libbpf_rs::set_print(Some((PrintLevel::Info, keep)));
}

/// What the verifier said about the first program it rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub program: String,
    pub last_message: String,
}

/// Finds the rejected program and the verifier's last meaningful line in libbpf's output:
/// `libbpf: prog 'NAME': -- BEGIN PROG LOAD LOG --` ... `-- END PROG LOAD LOG --`.
pub fn parse_rejection(log: &str) -> Option<Rejection> {
    let begin = log.find("-- BEGIN PROG LOAD LOG --")?;
    let head = &log[..begin];
    let program = head
        .rfind("prog '")
        .and_then(|i| head[i + 6..].split('\'').next())
        .unwrap_or("?")
        .to_string();
    let body = &log[begin + "-- BEGIN PROG LOAD LOG --".len()..];
    let body = body.split("-- END PROG LOAD LOG --").next().unwrap_or(body);
    // The statistics lines come after the error; skip them.
    let noise = [
        "processed ",
        "verification time",
        "stack depth",
        "max_states_per_insn",
        "mark_read",
    ];
    let last_message = body
        .lines()
        .map(str::trim)
        .rev()
        .find(|l| !l.is_empty() && !noise.iter().any(|n| l.starts_with(n)))
        .unwrap_or("(the verifier gave no reason)")
        .to_string();
    Some(Rejection {
        program,
        last_message,
    })
}

/// Maps a libbpf failure while `what` (loading, attaching...) to why this host cannot
/// run dnsdoc's programs (exit code 3). A verifier rejection names the kernel, the
/// program and the verifier's last message, and saves the whole log to a file.
pub fn unsupported(what: &str, e: libbpf_rs::Error) -> anyhow::Error {
    let log = LOG.lock().map(|l| l.clone()).unwrap_or_default();
    let kernel = crate::host::kernel_release();
    if let Some(r) = parse_rejection(&log) {
        let file = save_log(&log);
        let saved = match &file {
            Some(p) => format!("full verifier log in {}", p.display()),
            None => "the verifier log could not be saved".to_string(),
        };
        return CollectError::Unsupported(format!(
            "kernel {kernel} rejected BPF program {}: {} ({saved})",
            r.program, r.last_message
        ))
        .into();
    }
    match e.kind() {
        libbpf_rs::ErrorKind::PermissionDenied => CollectError::NoPrivileges(format!(
            "{what}: {e} (needs CAP_BPF and CAP_NET_ADMIN, or root)"
        ))
        .into(),
        _ => CollectError::Unsupported(format!("{what} on kernel {kernel}: {e}")).into(),
    }
}

fn save_log(log: &str) -> Option<PathBuf> {
    let path = std::env::temp_dir().join(format!("dnsdoc-verifier-{}.log", std::process::id()));
    std::fs::write(&path, log).ok()?;
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_program_and_last_verifier_line() {
        let log = "libbpf: prog 'dns_egress': BPF program load failed: Permission denied\n\
                   libbpf: prog 'dns_egress': -- BEGIN PROG LOAD LOG --\n\
                   0: R1=ctx() R10=fp0\n\
                   ; int dns_egress(struct __sk_buff *skb)\n\
                   invalid access to map value, value_size=1128 off=104 size=0\n\
                   R3 min value is outside of the allowed memory range\n\
                   processed 212 insns (limit 1000000) max_states_per_insn 1\n\
                   -- END PROG LOAD LOG --\n\
                   libbpf: prog 'dns_egress': failed to load: -13\n";
        let r = parse_rejection(log).unwrap();
        assert_eq!(r.program, "dns_egress");
        assert_eq!(
            r.last_message,
            "R3 min value is outside of the allowed memory range"
        );
    }

    #[test]
    fn no_log_means_no_rejection() {
        assert_eq!(parse_rejection("libbpf: map 'events': created\n"), None);
    }
}
