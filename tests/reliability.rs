//! Faults around a live `dnsdoc doctor`: kill -9 mid-window leaves no probe attached.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn kill_9_during_a_live_doctor_leaves_nothing_attached() {
    if !require_bpf("kill_9_during_a_live_doctor_leaves_nothing_attached") {
        return;
    }
    let cg = TestCgroup::new("doctor-kill");
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dnsdoc"));
    cmd.args([
        "doctor",
        "--duration",
        "60s",
        "--no-progress",
        "--port",
        &port.to_string(),
    ])
    .arg("--cgroup")
    .arg(&cg.path);
    let doctor = spawn_attached(cmd);
    assert_eq!(cg.attached_programs() as usize, expected_programs());
    doctor.signal("-KILL");
    let (code, _, _) = doctor.wait();
    assert_eq!(code, None, "killed by a signal");
    let deadline = Instant::now() + Duration::from_secs(5);
    while cg.attached_programs() != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(cg.attached_programs(), 0, "links die with the process");
}
