//! End-to-end journeys of the real binary: the demo console in a pseudo-terminal (read
//! through a VT100 emulator), and the sandbox driven from a second "terminal" with the
//! AWS CLI. Waiting is always for a condition with a deadline, never a bare sleep.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, CommandBuilder, PtySize};

const BIN: &str = env!("CARGO_BIN_EXE_keydeck");

struct Screen {
    parser: vt100::Parser,
    raw: Vec<u8>,
    closed: bool,
    /// Inside a synchronized update (DEC mode 2026, one per frame): the screen is a torn
    /// frame, not what the operator sees, so no condition is judged on it.
    in_frame: bool,
}

const FRAME_BEGIN: &[u8] = b"\x1b[?2026h";
const FRAME_END: &[u8] = b"\x1b[?2026l";

impl Screen {
    /// Feed output; `in_frame` follows the last frame marker, also one split across reads.
    fn feed(&mut self, bytes: &[u8]) {
        let from = self.raw.len().saturating_sub(FRAME_BEGIN.len() - 1);
        self.parser.process(bytes);
        self.raw.extend_from_slice(bytes);
        let tail = &self.raw[from..];
        let last = |m: &[u8]| tail.windows(m.len()).rposition(|w| w == m);
        match (last(FRAME_BEGIN), last(FRAME_END)) {
            (Some(b), Some(e)) => self.in_frame = b > e,
            (Some(_), None) => self.in_frame = true,
            (None, Some(_)) => self.in_frame = false,
            (None, None) => {}
        }
    }
}

/// keydeck running in a pseudo-terminal.
struct Pty {
    shared: Arc<(Mutex<Screen>, Condvar)>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Pty {
    fn spawn(args: &[&str], data_dir: &Path, rows: u16, cols: u16) -> Self {
        Self::spawn_program(BIN, args, data_dir, rows, cols)
    }

    /// A POSIX shell running `script` in the pseudo-terminal (e.g. `eval` the sandbox's
    /// exports, then `exec keydeck`), as an operator does in a second terminal.
    fn spawn_shell(script: &str, data_dir: &Path, rows: u16, cols: u16) -> Self {
        Self::spawn_program("sh", &["-c", script], data_dir, rows, cols)
    }

    fn spawn_program(program: &str, args: &[&str], data_dir: &Path, rows: u16, cols: u16) -> Self {
        let pair =
            native_pty_system().openpty(PtySize { rows, cols, pixel_width: 0, pixel_height: 0 }).expect("openpty");
        let mut cmd = CommandBuilder::new(program);
        cmd.args(args);
        cmd.env_clear();
        for k in ["PATH", "PYENV_ROOT", "PYENV_VERSION", "LANG"] {
            if let Ok(v) = std::env::var(k) {
                cmd.env(k, v);
            }
        }
        cmd.env("HOME", data_dir);
        cmd.env("TERM", "xterm-256color");
        cmd.env("AWS_EC2_METADATA_DISABLED", "true");
        cmd.env("KEYDECK_DATA_DIR", data_dir.join("data"));
        let child = pair.slave.spawn_command(cmd).expect("spawn keydeck");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("reader");
        let writer = pair.master.take_writer().expect("writer");
        let shared = Arc::new((
            Mutex::new(Screen {
                parser: vt100::Parser::new(rows, cols, 0),
                raw: Vec::new(),
                closed: false,
                in_frame: false,
            }),
            Condvar::new(),
        ));
        let s2 = shared.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                let n = reader.read(&mut buf).unwrap_or(0);
                let (lock, cv) = &*s2;
                let mut s = lock.lock().expect("lock");
                if n == 0 {
                    s.closed = true;
                    cv.notify_all();
                    break;
                }
                s.feed(&buf[..n]);
                cv.notify_all();
            }
        });
        Self { shared, writer, child, master: pair.master }
    }

    /// Wait until the screen satisfies `pred`, or fail with the screen's contents.
    fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.shared;
        let mut s = lock.lock().expect("lock");
        loop {
            let text = s.parser.screen().contents();
            if !s.in_frame && pred(&text) {
                return text;
            }
            let now = Instant::now();
            if now >= deadline || s.closed {
                panic!("timed out waiting for {what}; screen:\n{text}");
            }
            s = cv.wait_timeout(s, deadline - now).expect("wait").0;
        }
    }

    fn send(&mut self, bytes: &str) {
        self.writer.write_all(bytes.as_bytes()).expect("write to pty");
        self.writer.flush().expect("flush");
    }

    fn resize(&self, rows: u16, cols: u16) {
        self.master.resize(PtySize { rows, cols, pixel_width: 0, pixel_height: 0 }).expect("resize");
    }

    fn raw(&self) -> Vec<u8> {
        self.shared.0.lock().expect("lock").raw.clone()
    }

    fn wait_exit(&mut self, timeout: Duration) -> portable_pty::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return st;
            }
            assert!(Instant::now() < deadline, "keydeck did not exit");
            // Wait for the pty to report output/closure instead of sleeping blindly.
            let (lock, cv) = &*self.shared;
            let s = lock.lock().expect("lock");
            let _ = cv.wait_timeout(s, Duration::from_millis(50)).expect("wait");
        }
    }
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| !s.contains(") Z ")).unwrap_or(false)
}

fn wait_gone(pid: u32, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while pid_alive(pid) {
        assert!(Instant::now() < deadline, "process {pid} is still alive (orphan)");
        std::thread::yield_now();
    }
}

type Lines = std::io::Lines<BufReader<std::process::ChildStdout>>;

/// `cmd sandbox up --traffic none` (cmd: keydeck with its data dir chosen), read up to the
/// banner's last line ("Ctrl-C stops it."): the child, the rest of its stdout, the banner.
fn sandbox_up(mut cmd: Command, home: &Path) -> (std::process::Child, Lines, String) {
    let mut up = cmd
        .args(["sandbox", "up", "--traffic", "none"])
        .env("HOME", home)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sandbox up");
    let mut lines = BufReader::new(up.stdout.take().expect("stdout")).lines();
    let mut banner = String::new();
    for line in lines.by_ref() {
        let line = line.expect("line");
        banner.push_str(&line);
        banner.push('\n');
        if line.contains("Ctrl-C") {
            break;
        }
    }
    assert!(banner.contains("keydeck sandbox running at http://127.0.0.1:"), "{banner}");
    (up, lines, banner)
}

fn sandbox_pid(data_dir: &Path) -> u32 {
    let text = std::fs::read_to_string(data_dir.join("data/sandbox/sandbox.json")).expect("sandbox.json while running");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v["pid"].as_u64().expect("pid") as u32
}

/// A second terminal: `eval "$(keydeck sandbox env --as OPERATOR)"` against the demo's
/// sandbox, then `script` in a POSIX shell (the AWS CLI). Returns its trimmed stdout.
fn second_terminal(d: &Path, operator: &str, script: &str) -> String {
    let env = Command::new(BIN)
        .arg("--data-dir")
        .arg(d.join("data"))
        .args(["sandbox", "env", "--as", operator])
        .output()
        .expect("sandbox env");
    assert!(env.status.success(), "{}", String::from_utf8_lossy(&env.stderr));
    let exports = String::from_utf8(env.stdout).expect("utf8");
    let out = Command::new("sh").arg("-c").arg(format!("{exports}\n{script}")).env("HOME", d).output().expect("sh");
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn demo_console_journey() {
    let d = common::temp_dir("e2e");
    let mut pty = Pty::spawn(&["demo", "--traffic", "none"], &d, 30, 110);
    let estate = common::estate();
    let first = &estate.keys[0].alias;
    let screen = pty.wait_for("the console with the seeded inventory", Duration::from_secs(120), |s| {
        s.contains("user/key-admin") && s.contains(first.as_str()) && s.contains("refreshed")
    });
    assert!(screen.contains("READ-ONLY"), "{screen}");
    assert!(screen.contains("eu-north-1,eu-west-1"), "{screen}");
    // Every frame is one synchronized update: the waits below judge whole frames only.
    let raw = pty.raw();
    let count = |m: &[u8]| raw.windows(m.len()).filter(|w| *w == m).count();
    assert!(count(FRAME_BEGIN) > 0 && count(FRAME_BEGIN) == count(FRAME_END), "frames are not synchronized updates");
    let pid = sandbox_pid(&d);

    // Filter to the backup region.
    pty.send("/west");
    let west_only = estate.keys.iter().find(|k| k.region == "eu-north-1").expect("a north key");
    pty.wait_for("the filter applied", Duration::from_secs(10), |s| {
        s.contains("drop-backup-key") && !s.contains(&west_only.alias) && s.contains("/west")
    });
    pty.send("\x1b"); // Esc: clears the filter
    pty.wait_for("the filter cleared", Duration::from_secs(10), |s| s.contains(&west_only.alias));

    // Help overlay lists the inventory bindings; any key closes it.
    pty.send("?");
    pty.wait_for("help", Duration::from_secs(10), |s| s.contains("Keys") && s.contains("filter by name"));
    pty.send("x");
    pty.wait_for("help closed", Duration::from_secs(10), |s| !s.contains("filter by name"));

    // The palette switches views.
    pty.send(":sess\t\r");
    pty.wait_for("session view", Duration::from_secs(10), |s| s.contains("caller ARN") && s.contains("user/key-admin"));
    pty.send("1");
    pty.wait_for("the inventory view", Duration::from_secs(10), |s| {
        s.contains("Inventory —") && s.contains(first.as_str())
    });

    // Too small, then back.
    pty.resize(10, 40);
    pty.wait_for("the too-small message", Duration::from_secs(10), |s| s.contains("terminal too small"));
    pty.resize(30, 110);
    pty.wait_for("the inventory again", Duration::from_secs(10), |s| s.contains(first.as_str()));

    // The daily review: review mode, mark the selected item with a note, save to the journal.
    pty.send("v");
    pty.wait_for("review mode", Duration::from_secs(10), |s| s.contains("REVIEW: 0 marked"));
    pty.send("m");
    pty.wait_for("the note prompt", Duration::from_secs(10), |s| s.contains("reviewed, note:"));
    pty.send("SEC-1 checked with owner\r");
    pty.wait_for("one mark", Duration::from_secs(10), |s| s.contains("REVIEW: 1 marked"));
    pty.send("s");
    pty.wait_for("the review saved", Duration::from_secs(20), |s| s.contains("review saved to the journal"));
    let journal = d.join("data/journal/reviews-123456789012.jsonl");
    let entries = keydeck::incident::journal::read(&journal).expect("the journal verifies");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].kind, "review");
    assert_eq!(entries[0].actor, "arn:aws:iam::123456789012:user/key-admin");
    assert!(entries[0].body.to_string().contains("SEC-1 checked with owner"));
    // The journal and the inventory cache are the operator's alone.
    for dir in ["data/journal", "data/cache"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join(dir)).expect(dir).permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{dir}");
    }

    // The endpoint goes away: a refresh keeps every key last listed, marked `~`, and says
    // why; the console never shows an empty estate.
    pty.send("v");
    pty.wait_for("review mode left", Duration::from_secs(10), |s| !s.contains("REVIEW:"));
    let killed = Command::new("kill").args(["-9", &pid.to_string()]).status().expect("kill");
    assert!(killed.success());
    wait_gone(pid, Duration::from_secs(20));
    pty.send("r");
    let screen = pty.wait_for("the last listing kept", Duration::from_secs(60), |s| s.contains("listing failed"));
    assert!(screen.contains(&format!("~{first}")), "{screen}");
    assert!(!screen.contains("no keys or secrets"), "{screen}");

    pty.send("q");
    let status = pty.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "exit status {status:?}");
    let raw = pty.raw();
    let tail = String::from_utf8_lossy(&raw[raw.len().saturating_sub(200)..]).to_string();
    assert!(tail.contains("\x1b[?1049l"), "alternate screen left: {tail:?}");
    assert!(tail.contains("\x1b[?25h"), "cursor shown again: {tail:?}");
    wait_gone(pid, Duration::from_secs(20));
}

#[test]
fn sandbox_up_env_and_the_aws_cli() {
    let d = common::temp_dir("e2e-up");
    let data = d.join("data");
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir").arg(&data);
    let (mut up, lines, banner) = sandbox_up(cmd, &d);
    assert!(banner.contains(&format!("keydeck --data-dir {} sandbox env", data.display())), "{banner}");
    let pid = sandbox_pid(&d);

    let env = Command::new(BIN)
        .arg("--data-dir")
        .arg(&data)
        .args(["sandbox", "env", "--as", "security-lead"])
        .output()
        .expect("env");
    assert!(env.status.success(), "{}", String::from_utf8_lossy(&env.stderr));
    let exports = String::from_utf8(env.stdout).expect("utf8");
    for var in ["AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        assert!(exports.contains(&format!("export {var}=")), "{var}: {exports}");
    }
    // A second terminal: a POSIX shell evaluates the exports and runs the AWS CLI.
    let script = format!("{exports}\naws sts get-caller-identity --output json && aws kms list-aliases --output json");
    let out = Command::new("sh").arg("-c").arg(&script).env("HOME", &d).output().expect("sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "aws cli failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(":user/security-lead"), "{stdout}");
    assert!(stdout.contains("alias/drop-national-id-key"), "{stdout}");
    // keydeck in that terminal reads every region of the sandbox (KEYDECK_REGIONS).
    let script = format!("{exports}\n'{BIN}' --data-dir '{}' inventory --format json", data.display());
    let out = Command::new("sh").arg("-c").arg(&script).env("HOME", &d).output().expect("sh");
    assert!(out.status.success(), "keydeck inventory: {}", String::from_utf8_lossy(&out.stderr));
    let inv = String::from_utf8_lossy(&out.stdout);
    for region in ["\"eu-north-1\"", "\"eu-west-1\""] {
        assert!(inv.contains(region), "{region} not in the inventory: {inv}");
    }

    let bad =
        Command::new(BIN).arg("--data-dir").arg(&data).args(["sandbox", "env", "--as", "root"]).output().expect("env");
    assert_eq!(bad.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("key-admin"));

    // Ctrl-C (SIGINT) stops it cleanly and leaves nothing behind.
    let st = Command::new("kill").args(["-INT", &up.id().to_string()]).status().expect("kill");
    assert!(st.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = up.wait().expect("wait");
    assert!(status.success(), "sandbox up exit: {status:?}; {rest:?}");
    assert!(rest.iter().any(|l| l.contains("sandbox stopped")), "{rest:?}");
    wait_gone(pid, Duration::from_secs(20));
    assert!(!data.join("sandbox/sandbox.json").exists(), "stale sandbox.json left behind");
}

/// A child killed (SIGKILL) and reaped when dropped, so a failing test leaves no sandbox behind.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The endpoint in `<data>/sandbox/sandbox.json`.
fn sandbox_endpoint(d: &Path) -> String {
    let text = std::fs::read_to_string(d.join("data/sandbox/sandbox.json")).expect("sandbox.json while running");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v["endpoint"].as_str().expect("endpoint").to_owned()
}

#[test]
fn one_sandbox_per_data_dir_and_a_killed_owner_does_not_block() {
    let d = common::temp_dir("e2e-lock");
    let data = d.join("data");
    // The data dir from the environment: the hint still names it.
    let mut cmd = Command::new(BIN);
    cmd.env("KEYDECK_DATA_DIR", &data);
    let (first, _lines, banner) = sandbox_up(cmd, &d);
    let mut first = Reap(first);
    let shown = data.display().to_string();
    assert!(banner.contains(&format!("eval \"$(keydeck --data-dir {shown} sandbox env --as key-admin)\"")), "{banner}");
    let first_python = sandbox_pid(&d);
    let endpoint = sandbox_endpoint(&d);
    let files = |d: &Path| -> Vec<(String, std::time::SystemTime)> {
        ["estate.toml", "moto_sandbox.py", "cloudtrail.jsonl", "sandbox.json"]
            .iter()
            .map(|f| {
                let m = std::fs::metadata(d.join("data/sandbox").join(f)).expect(f);
                (f.to_string(), m.modified().expect("mtime"))
            })
            .collect()
    };
    let before = files(&d);

    // A second sandbox, then the demo, on the same data dir: both refuse, touching nothing.
    for args in [&["sandbox", "up", "--traffic", "none"][..], &["demo", "--traffic", "none"][..]] {
        let mut second = Command::new(BIN)
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .env("HOME", &d)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("second");
        // It must refuse at once: one that starts anyway is killed and fails the test.
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(st) = second.try_wait().expect("try_wait") {
                break st;
            }
            if Instant::now() > deadline {
                let _ = second.kill();
                let _ = second.wait();
                panic!("{args:?} did not refuse within 30 s: a second sandbox started on the data dir");
            }
            std::thread::sleep(Duration::from_millis(20)); // between polls, not a wait for an outcome
        };
        let mut err = String::new();
        second.stderr.take().expect("stderr").read_to_string(&mut err).expect("stderr");
        assert_eq!(status.code(), Some(3), "{args:?}: {err}");
        assert!(err.contains("a sandbox is already running in"), "{args:?}: {err}");
        assert!(err.contains("keydeck sandbox env --as OPERATOR"), "says how to join it: {err}");
        assert!(err.contains(&format!("keydeck pid {}", first.0.id())), "{args:?}: {err}");
        assert!(err.contains(&endpoint), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    assert_eq!(files(&d), before, "the refused starts changed the first sandbox's files");
    let env = Command::new(BIN).arg("--data-dir").arg(&data).args(["sandbox", "env", "--as", "key-admin"]).output();
    let env = env.expect("env");
    assert!(env.status.success(), "the first sandbox was orphaned: {}", String::from_utf8_lossy(&env.stderr));
    assert!(String::from_utf8_lossy(&env.stdout).contains(&endpoint));

    // The owner is killed outright: its lock goes with it and a new sandbox starts there.
    first.0.kill().expect("SIGKILL");
    first.0.wait().expect("wait");
    wait_gone(first_python, Duration::from_secs(20));
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir").arg(&data);
    let (again, lines, _) = sandbox_up(cmd, &d);
    let mut again = Reap(again);
    assert_ne!(sandbox_pid(&d), first_python);
    let st = Command::new("kill").args(["-INT", &again.0.id().to_string()]).status().expect("kill");
    assert!(st.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(again.0.wait().expect("wait").success(), "{rest:?}");
}

#[test]
fn a_key_disabled_with_the_aws_cli_shows_disabled_within_one_poll() {
    let d = common::temp_dir("e2e-change");
    // Polls every 2 s; CloudTrail delivers 1 s after the call; full refreshes are 15 min apart,
    // so only the feed can bring the change in time.
    let mut pty = Pty::spawn(&["--poll", "2", "demo", "--traffic", "none", "--trail-delay", "1"], &d, 30, 130);
    pty.wait_for("the inventory", Duration::from_secs(120), |s| {
        s.contains("trove-s3-sse-key") && s.contains("refreshed")
    });
    // DisableKey takes a key id or ARN, not an alias (as in AWS): look it up first.
    let disabled_at = Instant::now();
    second_terminal(
        &d,
        "security-lead",
        "id=$(aws kms describe-key --key-id alias/trove-s3-sse-key --region eu-west-1 --query KeyMetadata.KeyId --output text) && aws kms disable-key --key-id \"$id\" --region eu-west-1",
    );
    pty.wait_for("trove-s3-sse-key shown Disabled", Duration::from_secs(15), |s| {
        s.lines().any(|l| l.contains("trove-s3-sse-key") && l.contains("Disabled"))
    });
    let took = disabled_at.elapsed();
    assert!(took < Duration::from_secs(10), "within one poll after delivery, took {took:?}");
    pty.send("q");
    assert!(pty.wait_exit(Duration::from_secs(20)).success());
}

#[test]
fn the_security_lead_sees_a_deletion_alert_and_acknowledges_it() {
    let d = common::temp_dir("e2e-alert");
    let mut pty = Pty::spawn(
        &["--poll", "2", "demo", "--as", "security-lead", "--traffic", "none", "--trail-delay", "1"],
        &d,
        30,
        130,
    );
    pty.wait_for("the console", Duration::from_secs(120), |s| {
        s.contains("user/security-lead") && s.contains("refreshed")
    });
    // Elsewhere, with the AWS CLI: a new key is created and its deletion scheduled.
    let key_id = second_terminal(
        &d,
        "security-lead",
        "id=$(aws kms create-key --description e2e-doomed --query KeyMetadata.KeyId --output text) && aws kms schedule-key-deletion --key-id \"$id\" --pending-window-in-days 7 >/dev/null && echo $id",
    );
    pty.wait_for("the alert in the header", Duration::from_secs(20), |s| s.contains(" ALERT"));
    pty.send("2");
    pty.wait_for("the event in the feed, the alert pinned", Duration::from_secs(10), |s| {
        s.contains("ScheduleKeyDeletion") && s.contains("Key deletion scheduled")
    });
    pty.send("3");
    pty.wait_for("the alerts view", Duration::from_secs(10), |s| s.contains("Alerts —") && s.contains("OPEN"));
    pty.send("x");
    pty.wait_for("the acknowledgement", Duration::from_secs(10), |s| s.contains("alert acknowledged (journal)"));
    let entries =
        keydeck::incident::journal::read(&d.join("data/journal/alerts-123456789012.jsonl")).expect("verifies");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].kind, "alert.ack");
    assert_eq!(entries[0].actor, "arn:aws:iam::123456789012:user/security-lead");
    assert!(entries[0].body["alert"].as_str().unwrap_or("").contains(&key_id), "{:?}", entries[0].body);
    pty.send("q");
    assert!(pty.wait_exit(Duration::from_secs(20)).success());
}

/// The security lead during a compromise, in the console at 80×24: find the key, start
/// the incident, scope, disable, create the replacement (approved by the key-admin from
/// a second terminal while the console watches), and move the aliases. Counts the
/// keystrokes (besides the typed reason and alias) and the seconds from the console's
/// first frame to the aliases moved, and checks them against the goals (< 90 s, ≤ 20).
#[test]
fn the_security_lead_contains_a_compromised_key_from_the_console() {
    let d = common::temp_dir("e2e-incident");
    let mut pty = Pty::spawn(
        &["--allow-write", "--poll", "2", "demo", "--as", "security-lead", "--traffic", "none", "--trail-delay", "1"],
        &d,
        24,
        80,
    );
    pty.wait_for("the console", Duration::from_secs(120), |s| s.contains("drop-kyc-key") && s.contains("refreshed"));
    let started = Instant::now();
    let mut keystrokes = 0;
    let mut key = |pty: &mut Pty, k: &str| {
        keystrokes += 1;
        pty.send(k);
    };
    // Find the key.
    for k in ["/", "k", "y", "c", "\r"] {
        key(&mut pty, k);
    }
    pty.wait_for("the key found", Duration::from_secs(10), |s| s.contains("/kyc") && !s.contains("drop-db-master-key"));
    // Start the incident on it.
    key(&mut pty, "i");
    pty.wait_for("the reason prompt", Duration::from_secs(10), |s| s.contains("reason:"));
    pty.send("key material seen in a public repository");
    key(&mut pty, "\r");
    pty.wait_for("the incident view", Duration::from_secs(30), |s| {
        s.contains("Incident on drop-kyc-key — kms-key-compromise") && s.contains("contain")
    });
    // Scope (the cursor starts on notify, the next step).
    key(&mut pty, "\x1b[B");
    key(&mut pty, "\r");
    pty.wait_for("scope done", Duration::from_secs(60), |s| s.contains("scope: done"));
    // Disable: the confirmation shows the exact call and needs the alias typed.
    key(&mut pty, "\r");
    pty.wait_for("the confirmation with the call and Cancel as default", Duration::from_secs(10), |s| {
        s.contains("Type drop-kyc-key") && s.contains("kms:DisableKey") && s.contains("[ Cancel ]")
    });
    pty.send("drop-kyc-key");
    key(&mut pty, "\r");
    pty.wait_for("disable done", Duration::from_secs(30), |s| s.contains("disable: done"));
    // The replacement needs two people (004 §6, [approvals.create-key]): the security lead
    // is no key-admin, so a key-admin proposes it from a second terminal (the console lets
    // go of the log for that), the security lead approves it as the CISO (CreateKey runs
    // under his credentials), and the console records the key it made.
    key(&mut pty, "\r");
    pty.wait_for("the proposer's role named", Duration::from_secs(30), |s| s.contains("proposed by a key-admin"));
    let id = std::fs::read_dir(d.join("data/incidents"))
        .expect("incidents dir")
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".jsonl").map(str::to_owned))
        .next()
        .expect("the incident's log");
    let data = d.join("data");
    let proposed = second_terminal(
        &d,
        "key-admin",
        &format!("{BIN} --data-dir {} --allow-write incident run {id} --step create-key", data.display()),
    );
    let request = proposed
        .split_whitespace()
        .skip_while(|w| *w != "request")
        .nth(1)
        .unwrap_or_else(|| panic!("a request id in: {proposed}"))
        .to_owned();
    pty.wait_for("the request seen by the console", Duration::from_secs(15), |s| {
        s.contains("waiting for approval") && s.contains(&request)
    });
    // Asked again while CloudTrail has not attested the proposer (exit 8).
    let approved = second_terminal(
        &d,
        "security-lead",
        &format!(
            "for i in $(seq 60); do out=$({BIN} --data-dir {data} --allow-write approvals approve {request} --confirm drop-kyc-key 2>&1); rc=$?; [ $rc -ne 8 ] && break; sleep 0.5; done; echo \"$out\"; exit $rc",
            data = data.display()
        ),
    );
    assert!(approved.contains("approved by") && approved.contains("created arn:aws:kms"), "{approved}");
    // The console reads the request from the store and records the key, no key pressed.
    pty.wait_for("replacement recorded", Duration::from_secs(30), |s| s.contains("create-key: done"));
    // Move the aliases (the cursor is on enable-rotation, the next step).
    key(&mut pty, "\x1b[B");
    key(&mut pty, "\r");
    pty.wait_for("the confirmation", Duration::from_secs(10), |s| s.contains("kms:UpdateAlias"));
    pty.send("drop-kyc-key");
    key(&mut pty, "\r");
    pty.wait_for("aliases moved", Duration::from_secs(30), |s| s.contains("repoint-aliases: done"));
    let secs = started.elapsed().as_secs_f64();
    eprintln!("incident journey: {keystrokes} keystrokes besides the reason and alias, {secs:.1} s");
    assert!(keystrokes <= 20, "{keystrokes} keystrokes");
    assert!(secs < 90.0, "{secs:.1} s");
    // The log verifies (also against KMS), and AWS says what the console said (the
    // demo's sandbox runs until the console quits).
    let status = second_terminal(
        &d,
        "security-lead",
        &format!(
            "{BIN} --data-dir {data} incident verify {id} --online >/dev/null && {BIN} --data-dir {data} incident status {id} --format json",
            data = d.join("data").display()
        ),
    );
    let plan: serde_json::Value = serde_json::from_str(&status).expect("status json");
    let state_of = |step: &str| {
        plan["steps"].as_array().and_then(|a| a.iter().find(|s| s["id"] == step)).map(|s| s["state"]["state"].clone())
    };
    for step in ["scope", "disable", "create-key", "repoint-aliases"] {
        assert_eq!(state_of(step), Some(serde_json::json!("done")), "{step}: {status}");
    }
    // The old key (named in incident.opened) is Disabled; the alias now names an Enabled key.
    let log = std::fs::read_to_string(d.join(format!("data/incidents/{id}.jsonl"))).expect("log");
    let opened: serde_json::Value = serde_json::from_str(log.lines().next().expect("first record")).expect("json");
    let old = opened["body"]["target"]["key_id"].as_str().expect("the target's key id").to_owned();
    let states = second_terminal(
        &d,
        "key-auditor",
        &format!(
            "aws kms describe-key --key-id {old} --query KeyMetadata.KeyState --output text && \
             aws kms describe-key --key-id alias/drop-kyc-key --query '[KeyMetadata.KeyId,KeyMetadata.KeyState]' --output text"
        ),
    );
    let mut lines = states.lines();
    assert_eq!(lines.next(), Some("Disabled"), "{states}");
    let new = lines.next().unwrap_or_default();
    assert!(new.ends_with("Enabled") && !new.starts_with(&old), "{states}");
    pty.send("q");
    assert!(pty.wait_exit(Duration::from_secs(20)).success());
}

/// How long a console may take to list the approval store again (its timer: 15 s; each
/// listing's CloudTrail lookups back off while the pollers use the 2 calls/s).
const LISTED: Duration = Duration::from_secs(90);

/// The id of the request a status or outcome line names (`request <id> …`).
fn request_id(screen: &str) -> Option<String> {
    let rest = &screen[screen.find("request ")? + "request ".len()..];
    let id: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    (id.len() == 24).then_some(id)
}

/// Dual approval across two consoles against one sandbox (issue 11): the key-admin's
/// console proposes an on-demand rotation of an Overdue key from the inventory; the
/// security lead's console (a second terminal, `eval "$(keydeck sandbox env --as
/// security-lead)"`) shows the header indicator, opens the approvals view, refuses a
/// mistyped alias and approves with the right one; the key-admin's console shows the
/// request executed. AWS then lists the on-demand rotation.
#[test]
fn a_rotation_proposed_in_one_console_is_approved_in_another() {
    let d = common::temp_dir("e2e-approvals");
    let estate = common::estate();
    // drop-kyc-key is Overdue under the default policy (assets/estate.toml).
    let alias = "drop-kyc-key";
    assert!(
        estate.keys.iter().any(|k| k.alias == alias && matches!(k.expect_status.as_str(), "overdue" | "alert")),
        "the estate no longer has {alias} Overdue or ALERT"
    );
    let mut admin =
        Pty::spawn(&["--allow-write", "--poll", "2", "demo", "--traffic", "none", "--trail-delay", "1"], &d, 30, 130);
    admin.wait_for("the key-admin's console", Duration::from_secs(120), |s| {
        s.contains("user/key-admin") && s.contains(alias) && s.contains("refreshed")
    });
    // The security lead's console: another machine (its own data dir), the same sandbox.
    let lead_dir = common::temp_dir("e2e-approvals-lead");
    let script = format!(
        "eval \"$({BIN} --data-dir {} sandbox env --as security-lead)\" && exec {BIN} --allow-write --poll 2 --region eu-north-1,eu-west-1",
        d.join("data").display()
    );
    let mut lead = Pty::spawn_shell(&script, &lead_dir, 30, 130);
    lead.wait_for("the security lead's console", Duration::from_secs(60), |s| {
        s.contains("user/security-lead") && s.contains(alias) && s.contains("refreshed")
    });

    let before = on_demand_rotations(&d, alias);
    // The key-admin proposes from the inventory: P on the Overdue key.
    admin.send(&format!("/{alias}\r"));
    admin.wait_for("the key found", Duration::from_secs(10), |s| s.contains(&format!("/{alias}")));
    admin.send("P");
    admin.wait_for("the propose dialog", Duration::from_secs(10), |s| {
        s.contains("Propose rotate-key on drop-kyc-key") && s.contains("kms:RotateKeyOnDemand")
    });
    admin.send("rotation overdue per 004 §4.2\r");
    let proposed = admin.wait_for("the new request's id", Duration::from_secs(30), |s| {
        s.contains("proposed: rotate-key") || s.contains("refused") || s.contains("failed")
    });
    let id = request_id(&proposed).unwrap_or_else(|| panic!("no request id on screen:\n{proposed}"));
    admin.send("6");
    // Listings wait for CloudTrail's record of the proposal, and their LookupEvents share
    // the account's 2 calls/s with both consoles' pollers: allow for throttling backoff.
    admin.wait_for("the request under Mine", LISTED, |s| s.contains("Mine (1)") && s.contains(&id));

    // The security lead sees it waiting in the header, in whatever view.
    lead.wait_for("the header indicator", LISTED, |s| s.contains("⚑ 1 approval waiting: 6"));
    lead.send("6");
    lead.wait_for("the request waiting for me", Duration::from_secs(10), |s| {
        s.contains("Waiting for me (1)") && s.contains(&id)
    });
    lead.send("\r");
    lead.wait_for("the approval dialog with the call, the key now, Cancel the default", Duration::from_secs(20), |s| {
        s.contains("kms:RotateKeyOnDemand")
            && s.contains("KeyId=arn:aws:kms:")
            && s.contains("Type drop-kyc-key to approve")
            && s.contains("[ Cancel ]")
            && s.contains("Enabled ·")
            && s.contains("user/key-admin (as CloudTrail attests)")
    });
    lead.send("drop-kyc\r");
    lead.wait_for("a mismatch refused", Duration::from_secs(10), |s| s.contains("is not the key's alias"));
    lead.send("-key\r");
    // The dialog closes; the outcome (executed, or why not) is one line in the view.
    let screen = lead.wait_for("the outcome", LISTED, |s| {
        let closed = !s.contains("to approve:") && !s.contains("approving request");
        let outcome = ["approved by you and executed", "refused", "failed", "not yet"].iter().any(|w| s.contains(w));
        closed && outcome
    });
    assert!(screen.contains("approved by you and executed (kms:RotateKeyOnDemand)"), "{screen}");

    // The proposer's console shows it executed.
    admin.wait_for("the request executed in the proposer's console", LISTED, |s| {
        s.lines().any(|l| l.contains(&id) && l.contains("executed"))
    });

    // AWS: one on-demand rotation more than before (the estate seeds one, 368 days ago).
    assert_eq!(on_demand_rotations(&d, alias), before + 1, "ON_DEMAND rotations of {alias}");
    for pty in [&mut lead, &mut admin] {
        pty.send("q");
        assert!(pty.wait_exit(Duration::from_secs(20)).success());
    }
}

/// ListKeyRotations' ON_DEMAND entries of key `alias` in eu-north-1, as the key-auditor reads them.
fn on_demand_rotations(d: &Path, alias: &str) -> usize {
    let n = second_terminal(
        d,
        "key-auditor",
        &format!(
            "id=$(aws kms describe-key --key-id alias/{alias} --region eu-north-1 --query KeyMetadata.KeyId --output text) && \
             aws kms list-key-rotations --key-id \"$id\" --region eu-north-1 \
             --query \"length(Rotations[?RotationType=='ON_DEMAND'])\" --output text"
        ),
    );
    n.parse().unwrap_or_else(|e| panic!("ListKeyRotations count {n:?}: {e}"))
}
