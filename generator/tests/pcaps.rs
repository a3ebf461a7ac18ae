//! The generator writes `pcaps/` byte for byte: every committed generated capture is what a
//! fresh `spamtap-gen scenarios` gives, and nothing else is there.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

fn pcaps() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../pcaps")
}

/// Runs `spamtap-gen COMMAND DIR` into a fresh temporary directory named after `label`.
fn generate(command: &str, label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{label}-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_spamtap-gen"))
        .arg(command)
        .arg(&dir)
        .output()
        .expect("spamtap-gen runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

#[test]
fn generator_reproduces_committed_pcaps() {
    let dir = generate("scenarios", "spamtap-gen");
    let generated: BTreeSet<_> = fs::read_dir(&dir)
        .expect("listing")
        .map(|e| e.expect("entry").file_name())
        .collect();
    // real-*.pcap come from real programs (tests/real/capture.sh), not the generator.
    let committed: BTreeSet<_> = fs::read_dir(pcaps())
        .expect("pcaps/")
        .map(|e| e.expect("entry").file_name())
        .filter(|n| !n.to_string_lossy().starts_with("real-"))
        .collect();
    assert_eq!(
        generated, committed,
        "pcaps/ holds exactly the generated scenarios"
    );
    for name in generated {
        let a = fs::read(dir.join(&name)).expect("generated");
        let b = fs::read(pcaps().join(&name)).expect("committed");
        assert!(
            a == b,
            "{name:?} differs from a fresh generation: run spamtap-gen scenarios pcaps/"
        );
    }
    let _ = fs::remove_dir_all(&dir);
}

/// Every file under `dir`, as its path below `dir`.
fn tree(dir: &std::path::Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for entry in fs::read_dir(dir).expect("listing") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            for p in tree(&path) {
                out.insert(path.strip_prefix(dir).expect("below").join(p));
            }
        } else {
            out.insert(path.strip_prefix(dir).expect("below").to_path_buf());
        }
    }
    out
}

#[test]
fn generator_reproduces_committed_fuzz_seeds() {
    let dir = generate("fuzz-seeds", "spamtap-seeds");
    let committed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
    let (generated, kept) = (tree(&dir), tree(&committed));
    assert_eq!(
        generated, kept,
        "fuzz/seeds holds exactly the generated seeds: run spamtap-gen fuzz-seeds fuzz/seeds"
    );
    for name in generated {
        assert!(
            fs::read(dir.join(&name)).ok() == fs::read(committed.join(&name)).ok(),
            "{name:?} differs from a fresh generation: run spamtap-gen fuzz-seeds fuzz/seeds"
        );
    }
    let _ = fs::remove_dir_all(&dir);
}
