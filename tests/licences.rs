//! The licences of everything the binary is built from: every crate photoshield depends on
//! (normal dependencies, transitively, for this platform) must offer a licence the project can
//! ship under (permissive ones; no GPL, AGPL or LGPL), and THIRD_PARTY_LICENSES.md, the list
//! that goes with the binary, must match what Cargo resolves (`BLESS=1` rewrites it).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

/// Licences a binary of photoshield can be distributed under, with their notices. MPL-2.0 is
/// acceptable for dependencies used unmodified, which all are (none is vendored or patched).
const ACCEPTED: &[&str] = &[
    "MIT",
    "MIT-0",
    "Apache-2.0",
    "Apache-2.0 WITH LLVM-exception",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "0BSD",
    "ISC",
    "Zlib",
    "Unlicense",
    "CC0-1.0",
    "Unicode-3.0",
    "IJG",
    "OFL-1.1",
    "MPL-2.0",
];

/// Whether an SPDX expression ("(MIT OR Apache-2.0) AND IJG", or the old "MIT/Apache-2.0")
/// can be satisfied with [`ACCEPTED`] licences.
fn accepted(expression: &str) -> bool {
    let spaced = expression
        .replace('(', " ( ")
        .replace(')', " ) ")
        .replace('/', " OR ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut at = 0;
    let ok = any_of(&tokens, &mut at);
    ok && at == tokens.len()
}

fn any_of(tokens: &[&str], at: &mut usize) -> bool {
    let mut ok = all_of(tokens, at);
    while tokens.get(*at) == Some(&"OR") {
        *at += 1;
        ok |= all_of(tokens, at);
    }
    ok
}

fn all_of(tokens: &[&str], at: &mut usize) -> bool {
    let mut ok = one(tokens, at);
    while tokens.get(*at) == Some(&"AND") {
        *at += 1;
        ok &= one(tokens, at);
    }
    ok
}

fn one(tokens: &[&str], at: &mut usize) -> bool {
    match tokens.get(*at) {
        Some(&"(") => {
            *at += 1;
            let ok = any_of(tokens, at);
            if tokens.get(*at) == Some(&")") {
                *at += 1;
                ok
            } else {
                false
            }
        }
        Some(id) => {
            *at += 1;
            let mut licence = id.to_string();
            if tokens.get(*at) == Some(&"WITH") {
                licence = format!("{licence} WITH {}", tokens.get(*at + 1).unwrap_or(&""));
                *at += 2;
            }
            ACCEPTED.contains(&licence.as_str())
        }
        None => false,
    }
}

#[test]
fn licence_expressions_are_read_as_spdx_means_them() {
    assert!(accepted("MIT OR Apache-2.0"));
    assert!(accepted("(MIT OR Apache-2.0) AND IJG"));
    assert!(accepted("MIT/Apache-2.0"));
    assert!(accepted("Apache-2.0 WITH LLVM-exception OR Apache-2.0 OR MIT"));
    assert!(accepted("GPL-3.0-only OR MIT"));
    assert!(!accepted("GPL-3.0-only"));
    assert!(!accepted("MIT AND LGPL-2.1-or-later"));
    assert!(!accepted("(MIT OR Apache-2.0) AND AGPL-3.0-only"));
    assert!(!accepted("(MIT OR Apache-2.0"));
    assert!(!accepted(""));
}

fn host() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("-vV").output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc names the host platform")
}

/// "name version" -> (repository, licence) of every crate in the binary's dependency tree on this platform.
fn shipped_crates() -> BTreeMap<String, (String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let metadata = |offline: bool| {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(root)
            .args([
                "metadata",
                "--format-version",
                "1",
                "--locked",
                "--filter-platform",
            ])
            .arg(host());
        if offline {
            cmd.arg("--offline");
        }
        cmd.output().unwrap()
    };
    // Offline when the build has fetched everything (it has, in CI); otherwise from crates.io.
    let out = Some(metadata(true))
        .filter(|o| o.status.success())
        .unwrap_or_else(|| metadata(false));
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages: HashMap<&str, &serde_json::Value> = m["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p))
        .collect();
    let nodes: HashMap<&str, &serde_json::Value> = m["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let root_id = m["resolve"]["root"].as_str().unwrap();
    let mut seen = BTreeSet::new();
    let mut stack = vec![root_id];
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        for dep in nodes[id]["deps"].as_array().unwrap() {
            // Normal dependencies only: build scripts and tests do not ship.
            let normal = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null());
            if normal {
                stack.push(dep["pkg"].as_str().unwrap());
            }
        }
    }
    seen.remove(root_id);
    seen.into_iter()
        .map(|id| {
            let p = packages[id];
            let licence = p["license"].as_str().unwrap_or("(none stated)").to_string();
            let key = format!(
                "{} {}",
                p["name"].as_str().unwrap(),
                p["version"].as_str().unwrap()
            );
            (key, (p["repository"].as_str().unwrap_or("").to_string(), licence))
        })
        .collect()
}

#[test]
fn every_shipped_crate_has_an_accepted_licence_and_is_listed() {
    let crates = shipped_crates();
    assert!(crates.len() > 50, "the tree looks too small: {}", crates.len());
    let refused: Vec<String> = crates
        .iter()
        .filter(|(_, (_, licence))| !accepted(licence))
        .map(|(name, (_, licence))| format!("{name}: {licence}"))
        .collect();
    assert!(
        refused.is_empty(),
        "licences photoshield cannot ship under:\n{}",
        refused.join("\n")
    );

    let mut listing = String::from(
        "# Third-party licences\n\n\
         The photoshield binary is built from these crates (generated by `BLESS=1 cargo test \
         --release --test licences`; the test fails when it is out of date). Each licence's text \
         is in the crate's source. jpeg-encoder carries the IJG licence, which asks for this \
         notice: *this software is based in part on the work of the Independent JPEG Group.* \
         libwebp-sys builds Google's libwebp (BSD-3-Clause) from its bundled source. The DejaVu \
         Sans font embedded for watermarks is under the Bitstream Vera and Arev licence \
         (`fonts/LICENSE-DejaVu.txt`).\n\n\
         | crate | licence | repository |\n|---|---|---|\n",
    );
    for (name, (repository, licence)) in &crates {
        listing.push_str(&format!("| {name} | {licence} | {repository} |\n"));
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("THIRD_PARTY_LICENSES.md");
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, &listing).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == listing,
        "THIRD_PARTY_LICENSES.md is out of date; rewrite it with BLESS=1 cargo test --release --test licences"
    );
}
