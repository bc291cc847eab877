#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets) one after another, for
# SECONDS each, on the nightly toolchain (SECURITY.md, "Fuzzing"):
#   scripts/fuzz.sh SECONDS [TARGET...]
# Each target starts from its committed seeds (fuzz/seeds/TARGET, copied into
# fuzz/corpus/TARGET, which grows from run to run) and stops at its first
# crash, timeout (10 s for one input) or out-of-memory (2 GiB). An input that
# did any of these is copied to fuzz/regressions/TARGET, which
# tests/fuzz_regressions.rs replays on stable: commit it with the fix.
# Prints one line per target, and exits non-zero if any target failed.
# Set FUZZ_FEATURES=printpdf to also render PDFs with the printpdf backend.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(decode_json decode_ndjson render_xlsx render_pdf)

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked || exit 1
fi

# Built once, with the flags every run below uses: release, with debug
# assertions and overflow checks (what the stable replays have too).
build=(-O --debug-assertions)
[ -n "${FUZZ_FEATURES:-}" ] && build+=(--features "$FUZZ_FEATURES")
cd fuzz
cargo +nightly fuzz build "${build[@]}" || exit 1

mkdir -p logs
failed=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    cp -n "seeds/$t"/* "corpus/$t/" 2>/dev/null
    dict=()
    case $t in decode_*) dict=(-dict=fuzz.dict) ;; esac
    marker=$(mktemp)
    log="logs/$t.log"
    cargo +nightly fuzz run "${build[@]}" "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 "${dict[@]}" \
        >"$log" 2>&1
    rc=$?
    found=()
    while IFS= read -r f; do found+=("$f"); done < <(find "artifacts/$t" -type f -newer "$marker" \
        \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \))
    rm -f "$marker"
    if [ ${#found[@]} -gt 0 ]; then
        mkdir -p "regressions/$t"
        cp "${found[@]}" "regressions/$t/"
    fi
    figure() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
    runs=$(figure number_of_executed_units)
    execs=$(figure average_exec_per_sec)
    rss=$(figure peak_rss_mb)
    corpus=$(find "corpus/$t" -type f | wc -l)
    status=ok
    if [ ${#found[@]} -gt 0 ] || [ "$rc" -ne 0 ]; then
        status="FAILED (exit $rc; see fuzz/$log)"
        failed=1
    fi
    printf '%-14s %ss  runs=%s  exec/s=%s  corpus=%s  peak_rss=%sMB  crashes=%s  %s\n' \
        "$t" "$seconds" "${runs:-?}" "${execs:-?}" "$corpus" "${rss:-?}" "${#found[@]}" "$status"
done
exit $failed
