//! How the tests run dnsdoc: the binary with colour left to it, exit code and output.

use std::process::Command;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn dnsdoc(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_dnsdoc"))
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .expect("run dnsdoc");
    Run {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}
