//! `procring bench --json`, run for real between two processes: every
//! transport, mode and kind it promises is there, each measurement carries
//! its fields with values that make sense together, and no stream lost or
//! reordered a message. The figures themselves are not judged (timing
//! assertions in tests are a defect here: this machine is shared).

use std::collections::{BTreeSet, HashMap};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A whole quick run takes a few seconds; a stuck one is killed.
const LIMIT: Duration = Duration::from_secs(240);

/// One JSON line of the bench: a flat object of strings and numbers.
fn parse(line: &str) -> HashMap<String, String> {
    let body = line.trim().strip_prefix('{').and_then(|l| l.strip_suffix('}'));
    let body = body.unwrap_or_else(|| panic!("not a JSON object: {line}"));
    body.split(',')
        .map(|field| {
            let (k, v) = field.split_once(':').unwrap_or_else(|| panic!("no key in {field:?} of {line}"));
            (k.trim_matches('"').to_owned(), v.trim_matches('"').to_owned())
        })
        .collect()
}

fn num(row: &HashMap<String, String>, key: &str) -> f64 {
    let v = row.get(key).unwrap_or_else(|| panic!("no {key} in {row:?}"));
    v.parse().unwrap_or_else(|e| panic!("{key} = {v:?} in {row:?}: {e}"))
}

fn run_bench() -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_procring"))
        .args(["bench", "--quick", "--json", "--round-trips", "2000", "--stream-ms", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // The bench removes its segments itself; a killed one cannot.
    for entry in std::fs::read_dir("/dev/shm").unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with(&format!("procring-bench-{pid}-")) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let status = status.unwrap_or_else(|| panic!("procring bench did not finish in {LIMIT:?}"));
    assert!(status.success(), "procring bench failed: {status}");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    out
}

#[test]
fn bench_json_has_every_transport_and_field_and_loses_nothing() {
    let rows: Vec<_> = run_bench().lines().filter(|l| !l.trim().is_empty()).map(parse).collect();
    let mut seen = BTreeSet::new();
    for row in &rows {
        let (transport, mode, kind) = (&row["transport"], &row["mode"], &row["kind"]);
        assert!(mode == "poll" || mode == "block", "mode {mode:?}");
        let size = num(row, "size");
        match kind.as_str() {
            "pingpong" => {
                assert_eq!(size, 64.0, "the default ping-pong size: {row:?}");
                let p: Vec<f64> =
                    ["p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"].iter().map(|k| num(row, k)).collect();
                assert!(p[0] > 0.0 && p.windows(2).all(|w| w[0] <= w[1]), "percentiles out of order: {row:?}");
                assert!(num(row, "floor_p50_ns") > 0.0, "{row:?}");
            }
            "stream" | "stream-copy" => {
                assert!([8.0, 64.0, 4096.0].contains(&size), "the default stream sizes: {row:?}");
                let msgs = num(row, "msgs_per_s");
                assert!(msgs > 0.0 && num(row, "received") > 0.0, "an empty stream: {row:?}");
                assert!((num(row, "bytes_per_s") - msgs * size).abs() <= size, "bytes/s is not msgs/s × size: {row:?}");
                assert_eq!(num(row, "lost"), 0.0, "messages lost or out of order: {row:?}");
            }
            other => panic!("kind {other:?}"),
        }
        seen.insert((transport.clone(), mode.clone(), kind.clone()));
    }
    let mut expected = BTreeSet::new();
    let mut expect = |t: &str, modes: &[&str], kinds: &[&str]| {
        for m in modes {
            for k in kinds {
                expected.insert((t.to_owned(), m.to_string(), k.to_string()));
            }
        }
    };
    expect("floor", &["poll"], &["pingpong"]);
    expect("raw", &["poll"], &["stream"]);
    expect("raw-claim", &["poll"], &["stream"]);
    for t in ["procring-spsc", "procring-queue", "procring-pipe"] {
        expect(t, &["poll", "block"], &["pingpong", "stream", "stream-copy"]);
    }
    for t in ["unix-pipe", "unix-socket"] {
        expect(t, &["block"], &["pingpong", "stream"]);
    }
    assert_eq!(seen, expected, "(transport, mode, kind) measured");
    // Three stream sizes for every stream row but the 2x2 queue's (64 B).
    let streams = rows.iter().filter(|r| r["kind"] == "stream").count();
    assert_eq!(streams, 3 * expected.iter().filter(|e| e.2 == "stream").count() + 1, "stream rows");
    let copies = rows.iter().filter(|r| r["kind"] == "stream-copy").count();
    assert_eq!(copies, 3 * expected.iter().filter(|e| e.2 == "stream-copy").count(), "by-value stream rows");
    assert!(rows
        .iter()
        .any(|r| r["transport"] == "procring-queue" && num(r, "producers") == 2.0 && num(r, "consumers") == 2.0));
}
