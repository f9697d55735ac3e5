//! `gatewayctl` as its user runs it, for what needs no gateway: every file `validate` is given
//! gets its verdict whatever is wrong with it, and arguments that cannot be right are refused
//! before anything is sent.

use std::process::Command;

const VALID: &str = r#"{"version":1,"upstreams":{"u":{"targets":[{"url":"https://u.example"}]}},"routes":[{"id":"r","path":"/r","upstream":"u","auth":"none"}]}"#;

#[test]
fn a_file_over_kvs_value_limit_is_refused_with_the_reason_and_the_other_files_are_still_checked() {
    let dir = std::env::temp_dir().join(format!("gatewayctl-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("big.json");
    // Valid JSON, one byte over 25 MiB.
    // `{…` without its `}`, then `,"x":"`, the padding and `"}`.
    let pad = 25 * 1024 * 1024 + 1 - (VALID.len() - 1) - 6 - 2;
    let text = format!(
        "{},\"x\":\"{}\"}}",
        &VALID[..VALID.len() - 1],
        "y".repeat(pad)
    );
    assert_eq!(text.len(), 25 * 1024 * 1024 + 1);
    std::fs::write(&big, text).unwrap();
    let ok = dir.join("ok.json");
    std::fs::write(&ok, VALID).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gatewayctl"))
        .arg("validate")
        .arg(&big)
        .arg(&ok)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // It exited 1 having printed nothing about big.json.
    assert!(
        stderr.contains("big.json: larger than KV's 25 MiB value limit"),
        "stderr: {stderr:?}"
    );
    assert!(stdout.contains("ok.json: valid (1 routes"), "{stdout}");
}

#[test]
fn push_refuses_an_if_match_that_names_no_version_before_sending_anything() {
    let dir = std::env::temp_dir().join(format!("gatewayctl-if-match-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ok = dir.join("ok.json");
    std::fs::write(&ok, VALID).unwrap();
    for given in ["abc", "sha256:0123456789abcdef"] {
        // Nothing listens on port 9: a request sent would be "cannot reach".
        let out = Command::new(env!("CARGO_BIN_EXE_gatewayctl"))
            .args(["push", "--url", "http://127.0.0.1:9", "--token", "t"])
            .arg(&ok)
            .args(["--if-match", given])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("--if-match \"{given}\" names no version")),
            "{stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
