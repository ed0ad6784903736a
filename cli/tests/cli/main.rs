//! The `idc-guard` CLI as a person runs it: the real binary (`CARGO_BIN_EXE_idc-guard`, built by
//! the same test run), the standard AWS credential chain, against the local AWS stand-in.

mod access;
mod doctor;
mod grants;
mod hook_inspect;
mod scan;
mod scim;

use std::process::Command;

use local_aws::unique;

/// The CLI, with no function configuration inherited from the environment.
pub fn idc_guard() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_idc-guard"));
    c.env_remove("IDC_GUARD_STATE_TABLE")
        .env_remove("IDC_GUARD_ALERT_TOPIC_ARN")
        .env_remove("IDC_GUARD_POLICY_FILE")
        .env_remove("AWS_PROFILE");
    // A fresh working directory per run: commands that keep local state (`.idc-guard/state.db`)
    // never write into the source tree. Tests that need a particular directory set their own.
    let dir = std::env::temp_dir().join(unique("idc-guard-cwd"));
    std::fs::create_dir_all(&dir).expect("create a working directory");
    c.current_dir(dir);
    c
}
