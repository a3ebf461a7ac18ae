//! The shape of `src/`: stages in the order a packet travels, each importing only the stages
//! before it, with the shared vocabulary below them all. Every `crate::` path in every file of
//! a top-level module (its tests included) is checked against the order below, so an import
//! that reaches back, sideways or into a later stage, and so every cycle, fails here with the
//! file and the line.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Top-level modules of `src/`, earliest first. A module may import any module of an earlier
/// layer; the vocabulary layer imports nothing of the crate.
const LAYERS: &[&[&str]] = &[
    // Shared vocabulary (and the unit tests' helpers).
    &[
        "timestamp",
        "direction",
        "text",
        "software",
        "memory",
        "testing",
    ],
    &["capture"],
    &["decode"],
    &["flow"],
    &["reassembly"],
    &["protocols"],
    &["rules"],
    &["enrich"],
    &["analysis"],
    &["fleet"],
    &["output"],
    // What joins the stages: one worker's pipeline, then the threads, then the command line.
    &["tracker"],
    &["runtime"],
    &["cli", "config", "report"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`None` for lib.rs and main.rs).
fn module_of(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src()).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

/// The top-level modules a line names through `crate::`, including `crate::{a, b::c}`.
fn imports(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group: split on commas outside nested braces.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.push(std::mem::take(&mut item));
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            found.push(item);
        } else {
            found.push(rest.to_string());
        }
    }
    found
        .iter()
        .map(|path| {
            path.trim()
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("")
                .to_string()
        })
        .filter(|m| !m.is_empty() && m != "self")
        .collect()
}

#[test]
fn stages_import_only_earlier_stages() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    let mut modules = BTreeMap::new();
    let mut wrong = Vec::new();
    for file in &files {
        let Some(module) = module_of(file) else {
            continue;
        };
        let Some(own) = layer_of(&module) else {
            wrong.push(format!(
                "{}: module `{module}` has no place in LAYERS of tests/architecture.rs",
                file.display()
            ));
            continue;
        };
        modules.insert(module.clone(), own);
        let text = fs::read_to_string(file).expect("readable source");
        for (n, line) in text.lines().enumerate() {
            for target in imports(line) {
                if target == module {
                    continue;
                }
                match layer_of(&target) {
                    Some(layer) if layer < own && own > 0 => {}
                    Some(_) => wrong.push(format!(
                        "{}:{}: `{module}` imports `{target}`, which is not an earlier stage",
                        file.display(),
                        n + 1
                    )),
                    None => wrong.push(format!(
                        "{}:{}: `{target}` is not a module in LAYERS",
                        file.display(),
                        n + 1
                    )),
                }
            }
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
    // Every layer is a real module, so the list stays the map of src/.
    for layer in LAYERS {
        for module in *layer {
            assert!(
                modules.contains_key(*module),
                "LAYERS names `{module}`, which src/ does not have"
            );
        }
    }
}

#[test]
fn the_import_scanner_sees_groups_and_paths() {
    assert_eq!(imports("use crate::flow::Direction;"), ["flow"]);
    assert_eq!(
        imports("use crate::{analysis::Observation, output::{Event, EventSink}};"),
        ["analysis", "output"]
    );
    assert_eq!(
        imports("    let x = crate::text::cap_string(s, 4); // crate::rules"),
        ["text"]
    );
    assert!(imports("use super::Probe;").is_empty());
}
