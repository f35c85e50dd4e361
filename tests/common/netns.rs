//! A network namespace of a test's own, for glibc clients that must ask our server.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// A network namespace with loopback up, deleted on drop. Used for glibc clients:
/// `ip netns exec` bind-mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf, so
/// getaddrinfo asks our server on 127.0.0.1:53 and never the machine's resolver.
pub struct Netns {
    pub name: String,
    etc: PathBuf,
}

impl Netns {
    pub fn new(tag: &str, resolv_conf: &str) -> Self {
        let name = format!("dnsdoc-{tag}-{}", std::process::id());
        let st = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(st.success(), "ip netns add {name}");
        let st = Command::new("ip")
            .args(["netns", "exec", &name, "ip", "link", "set", "lo", "up"])
            .status()
            .unwrap();
        assert!(st.success());
        let etc = PathBuf::from("/etc/netns").join(&name);
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("resolv.conf"), resolv_conf).unwrap();
        Netns { name, etc }
    }

    /// Arguments that run `program args` inside the namespace: `ip netns exec NAME ...`.
    pub fn wrap<'a>(&'a self, program: &'a str, args: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["netns", "exec", self.name.as_str(), program];
        v.extend_from_slice(args);
        v
    }

    /// Waits until something listens on TCP `port` inside the namespace (`ss`).
    pub fn wait_for_tcp_listener(&self, port: u16) {
        let filter = format!("= :{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let out = Command::new("ip")
                .args(self.wrap("ss", &["-ltnH", "sport", &filter]))
                .output()
                .expect("ip netns exec ss");
            if !out.stdout.is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("nothing listens on TCP port {port} in netns {}", self.name);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = std::fs::remove_dir_all(&self.etc);
    }
}
