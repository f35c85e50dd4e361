//! `dnsdoc top` in a real terminal: tmux runs it, send-keys types, capture-pane reads
//! the screen. Real probes, a real dnsmasq, real dig clients.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

/// A tmux server of our own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(cmd: &str) -> Tmux {
        let socket = format!("dnsdoc-test-{}", std::process::id());
        let st = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "new-session",
                "-d",
                "-s",
                "top",
                "-x",
                "140",
                "-y",
                "45",
                cmd,
            ])
            .status()
            .expect("tmux (apt-get install tmux)");
        assert!(st.success(), "tmux new-session");
        Tmux { socket }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "top"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &str) {
        let st = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "top", keys])
            .status()
            .unwrap();
        assert!(st.success(), "send-keys {keys}");
    }

    fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["-L", &self.socket, "has-session", "-t", "top"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Waits until the screen shows every one of `texts`; returns the screen.
    fn wait_for(&self, texts: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.screen();
            if texts.iter().all(|t| s.contains(t)) {
                return s;
            }
            assert!(Instant::now() < deadline, "never showed {texts:?}:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

#[test]
fn top_shows_live_traffic_sorts_switches_tables_and_q_detaches() {
    if !require_bpf("top_shows_live_traffic_sorts_switches_tables_and_q_detaches") {
        return;
    }
    let cg = TestCgroup::new("top");
    let port = free_port();
    let _dnsmasq = start_dnsmasq(&cg, port, &[]);
    let tmux = Tmux::start(&format!(
        "{} top --cgroup {} --port {port}",
        env!("CARGO_BIN_EXE_dnsdoc"),
        cg.path.display()
    ));
    tmux.wait_for(&["dnsdoc top", "q quit"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while cg.attached_programs() == 0 {
        assert!(Instant::now() < deadline, "probes never attached");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Lookups every 100 ms, until the test is done (at most 30 s).
    let done = Arc::new(AtomicBool::new(false));
    let load = {
        let done = done.clone();
        let cg_path = cg.path.clone();
        std::thread::spawn(move || {
            let port = port.to_string();
            let start = Instant::now();
            while !done.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(30) {
                for name in ["a.good.test", "missing.test"] {
                    let _ = command_in_cgroup(
                        &cg_path,
                        "dig",
                        &["@127.0.0.1", "-p", &port, name, "+tries=1", "+timeout=1"],
                    )
                    .output();
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    let screen = tmux.wait_for(&["top processes by queries", "dig ("]);
    assert!(screen.contains("q/s"), "{screen}");
    assert!(screen.contains("capture complete"), "{screen}");
    assert!(screen.contains("latency, last window"), "{screen}");
    tmux.keys("Tab");
    let server = format!("127.0.0.1:{port} udp");
    tmux.wait_for(&["top servers by queries", &server]);
    tmux.keys("Tab");
    tmux.wait_for(&["top names by queries", "a.good.test.", "missing.test."]);
    tmux.keys("s");
    tmux.wait_for(&["top names by failures", "s sort: failures"]);

    tmux.keys("q");
    let deadline = Instant::now() + Duration::from_secs(10);
    while tmux.alive() {
        assert!(
            Instant::now() < deadline,
            "q did not quit:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(cg.attached_programs(), 0, "probes left attached after q");
    done.store(true, Ordering::SeqCst);
    load.join().unwrap();
}

#[test]
fn top_without_a_terminal_refuses_and_points_to_watch() {
    let out = run_dnsdoc(&["top"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("needs a terminal"), "{err}");
    assert!(
        err.contains("watch --format json") && err.contains("watch --interval"),
        "{err}"
    );
}
