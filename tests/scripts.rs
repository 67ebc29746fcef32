//! The README's two commands work with the OS's own Python: scripts/sandbox-python (the
//! install step of scripts/demo and scripts/test) run with /usr/bin/python3 first on PATH —
//! on Debian 12 an "externally managed" Python that refuses `pip install` — fills a
//! virtualenv of its own with the pinned packages, and reuses it on the next run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

const SYSTEM_PYTHON: &str = "/usr/bin/python3";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// None, after saying so where `cargo test` shows it, when there is no system Python.
fn system_python(test: &str) -> Option<()> {
    if Path::new(SYSTEM_PYTHON).exists() {
        return Some(());
    }
    // Straight to stderr: the harness hides a passing test's captured output.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {SYSTEM_PYTHON} does not exist on this machine");
    None
}

/// scripts/sandbox-python with only the OS's directories on PATH (so /usr/bin/python3 is
/// the first python3) and the virtualenv at `venv`.
fn sandbox_python(path: &str, venv: &Path) -> Output {
    let mut c = Command::new(repo().join("scripts/sandbox-python"));
    for k in ["VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH", "KEYDECK_PYTHON", "PYENV_VERSION"] {
        c.env_remove(k);
    }
    c.env("PATH", path).env("KEYDECK_VENV", venv).current_dir(std::env::temp_dir());
    c.output().expect("run scripts/sandbox-python")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim().to_owned()
}

/// `name==version` pins of src/sandbox/requirements.txt, extras dropped.
fn pins() -> Vec<(String, String)> {
    let reqs = std::fs::read_to_string(repo().join("src/sandbox/requirements.txt")).expect("requirements.txt");
    let pins: Vec<(String, String)> = reqs
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (name, version) = l.split_once("==").unwrap_or_else(|| panic!("{l:?} is not pinned with =="));
            (name.split('[').next().unwrap_or(name).to_owned(), version.to_owned())
        })
        .collect();
    assert!(pins.iter().any(|(n, _)| n == "moto"), "{pins:?}");
    pins
}

#[test]
fn installs_the_pinned_packages_with_the_system_python_and_reuses_them() {
    if system_python("installs_the_pinned_packages_with_the_system_python_and_reuses_them").is_none() {
        return;
    }
    // A cold install downloads ~80 packages (a minute). The virtualenv is kept in the target
    // dir under the hash of what is tested, so it is made afresh whenever the script or the
    // requirements change, and reused (as a second run must) otherwise.
    let mut h = Sha256::new();
    for f in ["scripts/sandbox-python", "src/sandbox/requirements.txt"] {
        h.update(std::fs::read(repo().join(f)).expect("read"));
    }
    let hash: String = h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let venv = tmp.join(format!("venv-system-python-{hash}"));
    for old in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
        let name = old.file_name().to_string_lossy().into_owned();
        if name.starts_with("venv-system-python-") && old.path() != venv {
            let _ = std::fs::remove_dir_all(old.path());
        }
    }

    let out = sandbox_python("/usr/bin:/bin", &venv);
    assert!(out.status.success(), "install failed:\n{}", text(&out.stderr));
    let python = venv.join("bin/python");
    assert_eq!(text(&out.stdout), python.display().to_string(), "stdout is the interpreter only");

    let cfg = std::fs::read_to_string(venv.join("pyvenv.cfg")).expect("pyvenv.cfg");
    assert!(cfg.lines().any(|l| l.replace(' ', "") == "home=/usr/bin"), "not made by {SYSTEM_PYTHON}:\n{cfg}");
    for (name, version) in pins() {
        let module = if name == "moto" { "moto.server" } else { name.as_str() };
        let check = Command::new(&python)
            .args(["-c", &format!("import {module}, importlib.metadata as m; print(m.version({name:?}))")])
            .output()
            .expect("run the virtualenv's python");
        assert!(check.status.success(), "{name}: {}", text(&check.stderr));
        assert_eq!(text(&check.stdout), version, "{name} is not at its pinned version");
    }

    // Requirements unchanged: no pip, no output, well under a second.
    let started = std::time::Instant::now();
    let again = sandbox_python("/usr/bin:/bin", &venv);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(text(&again.stdout), python.display().to_string());
    assert_eq!(text(&again.stderr), "", "the second run must reuse the virtualenv");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "reuse took {:?}", started.elapsed());
}

#[test]
fn a_python_without_venv_gets_one_line_naming_the_os_package() {
    if system_python("a_python_without_venv_gets_one_line_naming_the_os_package").is_none() {
        return;
    }
    // A python3 like Debian's without python3-venv: it runs, but ensurepip cannot be imported.
    let d = tempfile::tempdir().expect("tempdir");
    let bin = d.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir");
    let fake = bin.join("python3");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\ncase \"$*\" in *ensurepip*) echo \"ModuleNotFoundError: No module named 'ensurepip'\" >&2; exit 1;; esac\nexec {SYSTEM_PYTHON} \"$@\"\n"
        ),
    )
    .expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let venv = d.path().join("venv");
    let out = sandbox_python(&format!("{}:/usr/bin:/bin", bin.display()), &venv);
    assert!(!out.status.success());
    assert_eq!(text(&out.stdout), "");
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("python3-venv") && err.contains("Fedora"), "{err}");
    assert!(!venv.exists(), "nothing is left behind");
}

#[test]
fn a_directory_that_is_not_a_virtualenv_is_left_alone() {
    if system_python("a_directory_that_is_not_a_virtualenv_is_left_alone").is_none() {
        return;
    }
    let d = tempfile::tempdir().expect("tempdir");
    std::fs::write(d.path().join("notes.txt"), "mine").expect("write");
    let out = sandbox_python("/usr/bin:/bin", d.path());
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("is not a virtualenv"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(d.path().join("notes.txt")).expect("still there"), "mine");
}
