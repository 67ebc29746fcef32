//! The layout's rules, checked on the source: imports run one way.
//!
//! * Layers: `domain` imports no other layer; `aws`, `incident` and `report` only
//!   `domain`; `app` (the model and update loop) only `domain`; `ui` only `domain` and
//!   `app`; `runtime` anything but `cmd`; nothing imports `cmd` but `main`.
//! * No two files import each other, inside a layer or across (a `mod.rs` counts its
//!   children's names it uses).
//!
//! Paths are read from the source text (`crate::a::b`, `super::x`, and in a `mod.rs`
//! the children it names); test modules (`#[cfg(test)]` to the end of a file, and
//! `tests.rs` files) are skipped: tests may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (e.g. `app::update::feed`) → its source file.
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let p = entry.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = p.strip_prefix(src).expect("under src").with_extension("");
            let mut parts: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
            if parts.last().map(String::as_str) == Some("mod") {
                parts.pop();
            }
            let name = parts.join("::");
            if name == "lib" || name == "main" || parts.last().map(String::as_str) == Some("tests") {
                continue;
            }
            out.insert(name, p);
        }
    }
    out
}

/// The source without its test module.
fn non_test(text: &str) -> &str {
    match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    }
}

/// Identifiers paths made of `::`-separated names starting at `at`, with one level of
/// `{a, b::c}` groups expanded.
fn paths_at(text: &str, at: usize) -> Vec<Vec<String>> {
    let rest = &text[at..];
    let mut prefix: Vec<String> = Vec::new();
    let mut i = 0;
    let bytes = rest.as_bytes();
    loop {
        if rest[i..].starts_with('{') {
            let end = rest[i..].find('}').map(|e| i + e).unwrap_or(rest.len());
            return rest[i + 1..end]
                .split(',')
                .map(|item| {
                    let mut p = prefix.clone();
                    p.extend(item.trim().split("::").map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()));
                    p
                })
                .collect();
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        if i == start {
            break;
        }
        prefix.push(rest[start..i].to_owned());
        if rest[i..].starts_with("::") {
            i += 2;
        } else {
            break;
        }
    }
    vec![prefix]
}

/// The longest known module a path names.
fn resolve(path: &[String], mods: &BTreeMap<String, PathBuf>) -> Option<String> {
    (1..=path.len()).rev().map(|n| path[..n].join("::")).find(|m| mods.contains_key(m))
}

/// Module → the other modules its non-test code names.
fn graph(mods: &BTreeMap<String, PathBuf>) -> BTreeMap<String, BTreeSet<String>> {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, file) in mods {
        let text = std::fs::read_to_string(file).expect("read source");
        let text = non_test(&text);
        let segs: Vec<String> = name.split("::").map(str::to_owned).collect();
        let is_mod_rs = file.file_name().and_then(|f| f.to_str()) == Some("mod.rs");
        // `super` is the parent module, for `a/b.rs` and `a/b/mod.rs` alike.
        let base: Vec<String> = segs[..segs.len().saturating_sub(1)].to_vec();
        let mut refs = Vec::new();
        for (i, _) in text.match_indices("crate::") {
            refs.extend(paths_at(text, i + "crate::".len()));
        }
        for (i, _) in text.match_indices("super::") {
            for p in paths_at(text, i + "super::".len()) {
                let mut full = base.clone();
                full.extend(p);
                refs.push(full);
            }
        }
        if is_mod_rs {
            // A parent naming its children (`feed::run(…)`, `use feed::X`).
            for (child, _) in mods
                .iter()
                .filter(|(m, _)| m.strip_prefix(&format!("{name}::")).is_some_and(|rest| !rest.contains("::")))
            {
                let short = child.rsplit("::").next().unwrap_or(child);
                let pat = format!("{short}::");
                let used = text.match_indices(&pat).any(|(i, _)| {
                    i == 0
                        || !text.as_bytes()[i - 1].is_ascii_alphanumeric()
                            && text.as_bytes()[i - 1] != b'_'
                            && text.as_bytes()[i - 1] != b':'
                });
                if used {
                    refs.push(child.split("::").map(str::to_owned).collect());
                }
            }
        }
        let set = g.entry(name.clone()).or_default();
        for r in refs {
            if let Some(m) = resolve(&r, mods) {
                if &m != name {
                    set.insert(m);
                }
            }
        }
    }
    g
}

fn layer(m: &str) -> &str {
    m.split("::").next().unwrap_or(m)
}

#[test]
fn imports_run_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mods = modules(&src);
    assert!(mods.contains_key("domain::policy") && mods.contains_key("app::update"), "found the modules");
    let g = graph(&mods);

    let allowed: &[(&str, &[&str])] = &[
        ("domain", &[]),
        ("aws", &["domain"]),
        ("incident", &["domain"]),
        ("report", &["domain"]),
        ("app", &["domain"]),
        ("ui", &["domain", "app"]),
        ("runtime", &["domain", "app", "aws", "incident", "ui"]),
        ("sandbox", &["domain", "aws"]),
        ("cli", &[]),
        ("cmd", &["domain", "app", "aws", "incident", "report", "runtime", "sandbox", "cli"]),
    ];
    let mut broken = Vec::new();
    for (from, tos) in &g {
        let lf = layer(from);
        let ok: &[&str] = allowed.iter().find(|(l, _)| *l == lf).map(|(_, a)| *a).unwrap_or(&[]);
        for to in tos {
            let lt = layer(to);
            if lt != lf && !ok.contains(&lt) {
                broken.push(format!("{from} imports {to} ({lf} may import only {ok:?})"));
            }
        }
    }
    for (a, tos) in &g {
        for b in tos {
            if a < b && g.get(b).is_some_and(|s| s.contains(a)) {
                broken.push(format!("{a} and {b} import each other"));
            }
        }
    }
    assert!(broken.is_empty(), "layout rules broken:\n{}", broken.join("\n"));
}

#[test]
fn the_checker_sees_a_loop_and_a_layer_break() {
    // The rules above must be able to fail: the same reading of a made-up tree.
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path();
    std::fs::create_dir_all(src.join("domain")).expect("mkdir");
    std::fs::create_dir_all(src.join("app")).expect("mkdir");
    std::fs::write(src.join("domain/mod.rs"), "pub mod a;\npub mod b;\n").expect("write");
    std::fs::write(src.join("domain/a.rs"), "use super::b::X;\nuse crate::app::state::S;\n").expect("write");
    std::fs::write(src.join("domain/b.rs"), "use crate::domain::{a::Y};\n#[cfg(test)]\nuse crate::app::Z;\n")
        .expect("write");
    std::fs::write(src.join("app/mod.rs"), "pub mod state;\n").expect("write");
    std::fs::write(src.join("app/state.rs"), "").expect("write");
    let mods = modules(src);
    let g = graph(&mods);
    let a = &g["domain::a"];
    assert!(a.contains("domain::b") && a.contains("app::state"), "{a:?}");
    assert!(g["domain::b"].contains("domain::a"));
    assert!(!g["domain::b"].iter().any(|m| m.starts_with("app")), "test code is skipped");
}
