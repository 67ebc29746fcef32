//! Bad input gets one clear line on stderr and a documented non-zero exit code — never a
//! panic, never a broken terminal. Runs the real binary.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_keydeck");

/// A command with a clean AWS environment: no profile, no credentials, no IMDS.
fn keydeck(data_dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        // KEYDECK_PYTHON stays: the sandbox's interpreter (scripts/test exports its .venv's).
        if k.starts_with("AWS_") || k == "KEYDECK_DATA_DIR" || k == "KEYDECK_REGIONS" {
            c.env_remove(k);
        }
    }
    c.env("HOME", data_dir)
        .env("AWS_CONFIG_FILE", data_dir.join("aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", data_dir.join("aws-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .arg("--data-dir")
        .arg(data_dir.join("data"));
    c
}

fn stderr_line(out: &Output) -> String {
    let s = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!s.contains("panicked"), "panic: {s}");
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.len(), 1, "expected exactly one line on stderr, got: {s}");
    lines[0].to_owned()
}

fn run(c: &mut Command) -> (i32, String) {
    let out = c.output().expect("run keydeck");
    let code = out.status.code().expect("exit code, not a signal");
    (code, stderr_line(&out))
}

#[test]
fn version_and_help() {
    let d = temp_dir("cli");
    let out = keydeck(&d).arg("--version").output().expect("run");
    assert!(out.status.success());
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(version.starts_with(&format!("keydeck {} (", env!("CARGO_PKG_VERSION"))), "{version}");
    assert!(version.ends_with(')'), "{version}");
    // The commit it was built from: `keydeck 0.1.0 (0123456789ab[-dirty] 2026-11-29)`.
    let built = &version[version.find('(').expect("(") + 1..version.len() - 1];
    let commit_ok = match built.split_once(' ') {
        _ if built == "unknown commit" => true,
        Some((hash, date)) => {
            let hash = hash.strip_suffix("-dirty").unwrap_or(hash);
            hash.len() == 12
                && hash.chars().all(|c| c.is_ascii_hexdigit())
                && chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok()
        }
        None => false,
    };
    assert!(commit_ok, "no commit or \"unknown commit\" in {version:?}");
    for sub in
        [vec!["--help"], vec!["demo", "--help"], vec!["sandbox", "up", "--help"], vec!["sandbox", "env", "--help"]]
    {
        let out = keydeck(&d).args(&sub).output().expect("run");
        assert!(out.status.success(), "{sub:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"), "{sub:?}");
    }
    let out = keydeck(&d).arg("--frobnicate").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn completions_and_man_page_print_without_aws() {
    let d = temp_dir("cli");
    for (args, marker) in [
        (&["completions", "bash"][..], "complete -F _keydeck"),
        (&["completions", "zsh"], "#compdef keydeck"),
        (&["completions", "fish"], "complete -c keydeck"),
        (&["man"], ".TH keydeck 1"),
    ] {
        let out = keydeck(&d).args(args).output().expect("run");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains(marker), "{args:?} lacks {marker:?}");
    }
    let out = keydeck(&d).args(["completions", "tcsh"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");
}

#[test]
fn malformed_policy_names_file_line_and_column() {
    let d = temp_dir("cli");
    let policy = d.join("policy.toml");
    std::fs::write(
        &policy,
        "[policy]\nname = \"x\"\n\n[[keys]]\nname = \"k\"\nowner = \"o\"\nclassification = \"L7\"\n",
    )
    .expect("write");
    let (code, line) = run(keydeck(&d).arg("--policy").arg(&policy).args(["--region", "eu-north-1"]));
    assert_eq!(code, 3);
    assert!(line.contains(&format!("{}:7:18:", policy.display())), "{line}");
    assert!(line.contains("unknown classification"), "{line}");
    let (code, line) = run(keydeck(&d).arg("--policy").arg(d.join("missing.toml")));
    assert_eq!(code, 3);
    assert!(line.contains("cannot read policy file"), "{line}");
}

#[test]
fn unknown_region() {
    let d = temp_dir("cli");
    let (code, line) = run(keydeck(&d).args(["--region", "eu-nowhere"]));
    assert_eq!(code, 3);
    assert!(line.contains("unknown region \"eu-nowhere\""), "{line}");
}

#[test]
fn regions_from_keydeck_regions() {
    let d = temp_dir("cli");
    let (code, line) = run(keydeck(&d).env("KEYDECK_REGIONS", "eu-north-1,eu-nowhere"));
    assert_eq!(code, 3);
    assert!(line.contains("unknown region \"eu-nowhere\""), "read from KEYDECK_REGIONS: {line}");
}

#[cfg(unix)]
#[test]
fn the_data_dir_and_the_log_are_the_owners_only() {
    use std::os::unix::fs::PermissionsExt;
    let d = temp_dir("cli");
    let _ = run(&mut keydeck(&d));
    let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(&d.join("data")), 0o700);
    assert_eq!(mode(&d.join("data").join("keydeck.log")), 0o600);
}

#[test]
fn no_region_at_all() {
    let d = temp_dir("cli");
    let (code, line) = run(&mut keydeck(&d));
    assert_eq!(code, 3);
    assert!(line.contains("no region selected"), "{line}");
}

#[test]
fn unknown_profile() {
    let d = temp_dir("cli");
    std::fs::write(d.join("aws-config"), "[profile real]\nregion = eu-north-1\n").expect("write");
    let (code, line) = run(keydeck(&d).args(["--profile", "nope", "--region", "eu-north-1"]));
    assert!(line.contains("nope"), "{line}");
    assert_eq!(code, 3, "{line}");
    assert!(line.contains("unknown profile"), "{line}");
    // No config or credentials file at all: the profile is just as unknown.
    let bare = temp_dir("cli");
    let (code, line) = run(keydeck(&bare).args(["--profile", "nope", "--region", "eu-north-1"]));
    assert_eq!(code, 3, "{line}");
    assert!(line.contains("unknown profile") && !line.contains("set --profile"), "{line}");
}

/// As with the AWS CLI, `--profile` is the identity asked for: credentials in the
/// environment do not override it (they would act as someone else), and an unknown
/// profile is refused even when the environment has credentials.
#[test]
fn an_explicit_profile_wins_over_credentials_in_the_environment() {
    let d = temp_dir("cli");
    let info = sandbox();
    let (auditor, lead) = (info.operator("key-auditor").expect("op"), info.operator("security-lead").expect("op"));
    std::fs::write(d.join("aws-config"), "[profile auditor]\nregion = eu-north-1\n").expect("write");
    std::fs::write(
        d.join("aws-credentials"),
        format!(
            "[auditor]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            auditor.access_key_id, auditor.secret_access_key
        ),
    )
    .expect("write");
    let with_env = |c: &mut Command| {
        c.env("AWS_ACCESS_KEY_ID", &lead.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &lead.secret_access_key)
            .env("AWS_ENDPOINT_URL", &info.endpoint);
    };
    let mut c = keydeck(&d);
    with_env(&mut c);
    let out = c.args(["--profile", "auditor", "--region", "eu-north-1", "review", "--format", "json"]).output();
    let out = out.expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["reviewer"]["arn"], auditor.arn, "the profile's identity, not the environment's");
    // Without --profile the environment's credentials are the identity (the SDK's chain).
    let mut c = keydeck(&d);
    with_env(&mut c);
    let out = c.args(["--region", "eu-north-1", "review", "--format", "json"]).output().expect("run");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["reviewer"]["arn"], lead.arn);
    let mut c = keydeck(&d);
    with_env(&mut c);
    let (code, line) = run(c.args(["--profile", "nope", "--region", "eu-north-1", "review"]));
    assert_eq!(code, 3, "{line}");
    assert!(line.contains("unknown profile"), "{line}");
}

#[test]
fn no_credentials() {
    let d = temp_dir("cli");
    let (code, line) = run(keydeck(&d).args(["--region", "eu-north-1", "--endpoint-url", &sandbox().endpoint]));
    assert_eq!(code, 4, "{line}");
    assert!(line.contains("no credentials"), "{line}");
    assert!(line.contains("AWS_ACCESS_KEY_ID"), "says what to do: {line}");
}

#[test]
fn invalid_credentials() {
    let d = temp_dir("cli");
    let (code, line) = run(keydeck(&d)
        .args(["--region", "eu-north-1", "--endpoint-url", &sandbox().endpoint])
        .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7NOTREAL")
        .env("AWS_SECRET_ACCESS_KEY", "x".repeat(40)));
    assert_eq!(code, 4, "{line}");
    assert!(line.contains("invalid credentials"), "{line}");
}

#[test]
fn expired_credentials() {
    // A credential_process that hands out credentials which expired an hour ago.
    let d = temp_dir("cli");
    let script = d.join("creds.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho '{\"Version\":1,\"AccessKeyId\":\"AKIAEXPIREDEXAMPLE00\",\"SecretAccessKey\":\"x\",\"SessionToken\":\"t\",\"Expiration\":\"2020-01-01T00:00:00Z\"}'\n",
    )
    .expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    std::fs::write(
        d.join("aws-config"),
        format!("[profile old]\nregion = eu-north-1\ncredential_process = {}\n", script.display()),
    )
    .expect("write");
    let (code, line) = run(keydeck(&d).args(["--profile", "old", "--endpoint-url", &sandbox().endpoint]));
    assert_eq!(code, 4, "{line}");
    assert!(line.contains("expired"), "{line}");
}

#[test]
fn unreachable_endpoint() {
    let d = temp_dir("cli");
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let (code, line) = run(keydeck(&d)
        .args(["--region", "eu-north-1", "--endpoint-url", &format!("http://127.0.0.1:{port}")])
        .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "x".repeat(40)));
    assert_eq!(code, 5, "{line}");
    assert!(line.contains("endpoint unreachable"), "{line}");
    assert!(line.contains("Connection refused"), "the cause in its own words: {line}");
    assert!(!line.contains("DispatchFailure(") && !line.contains("{ source"), "no Debug dump: {line}");
}

#[test]
fn a_malformed_endpoint_url_is_a_usage_error_before_any_call() {
    let d = temp_dir("cli");
    for bad in ["not-a-url", "ftp://127.0.0.1", "http://", "http://127.0.0.1:99999", "http://user@host"] {
        let out = keydeck(&d)
            .args(["--region", "eu-north-1", "--endpoint-url", bad, "inventory"])
            .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "x".repeat(40))
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        assert!(err.contains("is not an endpoint URL"), "{bad}: {err}");
        assert!(!err.contains("Request {"), "{bad}: no request dumped: {err}");
    }
    for good in ["http://127.0.0.1:4566", "https://kms.eu-north-1.amazonaws.com", "http://[::1]:4566/", "http://[::1]"]
    {
        assert_eq!(keydeck::cli::parse_endpoint(good), Ok(good.to_owned()));
    }
}

#[test]
fn python_missing() {
    let d = temp_dir("cli");
    let (code, line) = run(keydeck(&d).args(["sandbox", "up"]).env("KEYDECK_PYTHON", d.join("no-such-python")));
    assert_eq!(code, 6, "{line}");
    assert!(line.contains("was not found") && line.contains("KEYDECK_PYTHON"), "{line}");
}

#[test]
fn moto_missing_says_how_to_install() {
    // The same interpreter without site-packages cannot import moto.
    let d = temp_dir("cli");
    let wrapper = d.join("python-without-moto");
    std::fs::write(&wrapper, "#!/bin/sh\nexec python3 -S -E \"$@\"\n").expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let (code, line) = run(keydeck(&d).args(["sandbox", "up"]).env("KEYDECK_PYTHON", &wrapper));
    assert_eq!(code, 6, "{line}");
    assert!(line.contains("moto") && line.contains("scripts/sandbox-python"), "{line}");
}

#[test]
fn port_in_use() {
    let d = temp_dir("cli");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let (code, line) = run(keydeck(&d).args(["sandbox", "up", "--port", &port.to_string()]));
    assert_eq!(code, 6, "{line}");
    assert!(line.contains(&port.to_string()) && line.contains("in use"), "{line}");
    drop(busy);
}

#[test]
fn sandbox_env_without_a_running_sandbox() {
    let d = temp_dir("cli");
    let (code, line) = run(keydeck(&d).args(["sandbox", "env", "--as", "key-admin"]));
    assert_eq!(code, 3, "{line}");
    assert!(line.contains("no sandbox is running"), "{line}");
}
