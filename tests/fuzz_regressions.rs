//! Replays, on stable, every seed of the fuzz targets (`fuzz/seeds/TARGET/`)
//! and every input that ever made one crash, hang or run out of memory
//! (`fuzz/regressions/TARGET/`, kept by `scripts/fuzz.sh`), through the same
//! code as the targets: `fuzz/src/lib.rs`, included here.
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

#[path = "../fuzz/src/lib.rs"]
mod harness;

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

#[test]
fn every_seed_and_saved_crash_replays_without_a_panic() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    // Regressions are kept per target: anything else there is a mistake.
    for entry in fs::read_dir(fuzz.join("regressions")).into_iter().flatten() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(path.is_dir() && harness::TARGETS.contains(&name.as_str()), "fuzz/regressions/{name} is not a target's directory");
    }
    let mut failures = Vec::new();
    for target in harness::TARGETS {
        let seeds = inputs(&fuzz.join("seeds").join(target));
        assert!(!seeds.is_empty(), "fuzz/seeds/{target} has no seed");
        for file in seeds.iter().chain(&inputs(&fuzz.join("regressions").join(target))) {
            let data = fs::read(file).unwrap();
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| assert!(harness::run(target, &data)))) {
                let message = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)");
                failures.push(format!("{target} {}: {message}", file.display()));
            }
        }
    }
    assert!(failures.is_empty(), "inputs that panic:\n{}", failures.join("\n"));
}
