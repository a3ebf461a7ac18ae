//! `docs/events.md` stays true: every event type and field the golden files contain is
//! documented, and its examples are real output.

mod common;

use std::collections::BTreeSet;

use serde_json::Value;

use common::root;

/// Field paths of an event, two levels into objects (`smtp.client_software`), arrays skipped.
fn paths(prefix: &str, v: &Value, depth: usize, out: &mut BTreeSet<String>) {
    if let Value::Object(map) = v {
        for (k, child) in map {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            out.insert(path.clone());
            if depth > 0 {
                paths(&path, child, depth - 1, out);
            }
        }
    }
}

#[test]
fn every_golden_field_is_documented() {
    let docs = std::fs::read_to_string(root().join("docs/events.md")).expect("docs");
    let mut fields = BTreeSet::new();
    let mut types = BTreeSet::new();
    for line in golden_lines() {
        let v: Value = serde_json::from_str(&line).expect("golden JSON");
        types.insert(v["event_type"].as_str().unwrap_or("").to_string());
        paths("", &v, 2, &mut fields);
    }
    for t in &types {
        assert!(
            docs.contains(&format!("## `{t}`")),
            "event type {t} has no section"
        );
    }
    // A field is documented when its path or its last name appears in backticks, alone or
    // after a dot (`smtp.helo`, `helo`, `<role>.total`), or fields under it are
    // (`smtp.auth.mechanism`).
    let undocumented: Vec<&String> = fields
        .iter()
        .filter(|path| {
            let last = path.rsplit('.').next().unwrap_or(path);
            !(docs.contains(&format!("`{path}`"))
                || docs.contains(&format!("`{path}."))
                || docs.contains(&format!(".{last}`"))
                || docs.contains(&format!("`{last}`"))
                || docs.contains(&format!(".{last},")))
        })
        .collect();
    assert!(
        undocumented.is_empty(),
        "not in docs/events.md: {undocumented:?}"
    );
}

/// Every line of every golden file.
fn golden_lines() -> BTreeSet<String> {
    let mut lines = BTreeSet::new();
    for entry in std::fs::read_dir(root().join("tests/golden")).expect("golden") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("read");
        lines.extend(text.lines().map(str::to_string));
    }
    lines
}

/// Examples are real output: each is a line of a golden file, except the first of a block
/// introduced as abridged.
#[test]
fn every_example_is_real_output() {
    let docs = std::fs::read_to_string(root().join("docs/events.md")).expect("docs");
    let golden = golden_lines();
    let (mut in_json, mut abridged, mut first) = (false, false, false);
    let mut previous = "";
    let mut examples = 0;
    for line in docs.lines() {
        match line {
            "```json" => {
                in_json = true;
                first = true;
                abridged = previous.contains("abridged");
            }
            "```" => in_json = false,
            l if in_json => {
                let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
                assert!(v["event_type"].is_string(), "{l}");
                if !(abridged && first) {
                    assert!(
                        golden.contains(l),
                        "not a golden line (regenerate the example): {l}"
                    );
                }
                first = false;
                examples += 1;
            }
            l if !l.trim().is_empty() => previous = l,
            _ => {}
        }
    }
    assert!(examples >= 10, "{examples} examples");
}
