//! Faults around a live `dnsdoc doctor`: kill -9 mid-window leaves no probe attached.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn kill_9_during_a_live_doctor_leaves_nothing_attached() {
    if !require_bpf("kill_9_during_a_live_doctor_leaves_nothing_attached") {
        return;
    }
    let cg = TestCgroup::new("doctor-kill");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dnsdoc"))
        .args([
            "doctor",
            "--duration",
            "60s",
            "--no-progress",
            "--port",
            &port.to_string(),
            "--cgroup",
        ])
        .arg(&cg.path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let attached = lines.any(|l| l.is_ok_and(|l| l.contains("dnsdoc: watching")));
    assert!(attached, "doctor never attached");
    assert_eq!(cg.attached_programs(), 8);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while cg.attached_programs() != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(cg.attached_programs(), 0, "links die with the process");
}
