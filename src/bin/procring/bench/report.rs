//! Output: the table and the JSON lines.

use super::*;

pub(super) fn json(r: &Row) -> String {
    let mut s = format!(
        "{{\"transport\":\"{}\",\"mode\":\"{}\",\"kind\":\"{}\",\"size\":{},\"producers\":{},\"consumers\":{}",
        r.transport.name(),
        r.mode.name(),
        r.kind.name(),
        r.size,
        r.procs.0,
        r.procs.1
    );
    if let Some(l) = r.latency {
        let _ = write!(
            s,
            ",\"p50_ns\":{},\"p90_ns\":{},\"p99_ns\":{},\"p999_ns\":{},\"max_ns\":{},\"floor_p50_ns\":{}",
            l.p50, l.p90, l.p99, l.p999, l.max, l.floor_p50
        );
    }
    if let Some(t) = r.stream {
        let _ = write!(
            s,
            ",\"msgs_per_s\":{:.0},\"bytes_per_s\":{:.0},\"received\":{},\"lost\":{}",
            t.msgs_per_s, t.bytes_per_s, t.received, t.lost
        );
    }
    s.push('}');
    s
}

pub(super) fn ns(v: u64) -> String {
    if v >= 100_000 {
        format!("{:.0}us", v as f64 / 1000.0)
    } else if v >= 10_000 {
        format!("{:.1}us", v as f64 / 1000.0)
    } else {
        format!("{v}ns")
    }
}

pub(super) fn si(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{:.2}G", v / 1e9),
        v if v >= 1e6 => format!("{:.1}M", v / 1e6),
        v if v >= 1e3 => format!("{:.1}k", v / 1e3),
        v => format!("{v:.0}"),
    }
}

pub(super) fn table(rows: &[Row], floor_lines: u64) -> String {
    let mut out = String::new();
    let pipe_p50 = rows
        .iter()
        .find(|r| r.kind == Kind::PingPong && r.transport == Transport::UnixPipe)
        .and_then(|r| r.latency.map(|l| l.p50));
    let _ = writeln!(
        out,
        "\nround trip (ping-pong), {} bytes",
        rows.iter().find(|r| r.kind == Kind::PingPong).map_or(0, |r| r.size)
    );
    let _ = writeln!(
        out,
        "{:<18} {:<5} {:>8} {:>8} {:>8} {:>8} {:>8}  {:>9} {:>7} {:>7}",
        "transport", "mode", "p50", "p90", "p99", "p99.9", "max", "floor p50", "x floor", "x pipe"
    );
    for r in rows.iter().filter(|r| r.kind == Kind::PingPong) {
        let l = r.latency.expect("ping-pong rows have latency");
        let _ = writeln!(
            out,
            "{:<18} {:<5} {:>8} {:>8} {:>8} {:>8} {:>8}  {:>9} {:>7.2} {:>7}",
            r.transport.name(),
            r.mode.name(),
            ns(l.p50),
            ns(l.p90),
            ns(l.p99),
            ns(l.p999),
            ns(l.max),
            ns(l.floor_p50),
            l.p50 as f64 / l.floor_p50.max(1) as f64,
            pipe_p50.map_or("-".into(), |p| format!("{:.3}", l.p50 as f64 / p.max(1) as f64)),
        );
    }
    for (kind, title) in [
        (Kind::Stream, "one-way stream"),
        (Kind::StreamCopy, "one-way stream, the consumer receiving each message by value, copying and checking it"),
    ] {
        if rows.iter().any(|r| r.kind == kind) {
            stream_table(&mut out, rows, kind, title);
        }
    }
    let _ = writeln!(
        out,
        "\nfloor: a raw cache-line ping-pong between the same two cores, over {floor_lines} line pair(s)\n  \
         in turn, interleaved with each row's runs.\n\
         x floor / x pipe: p50 over the floor's / the Unix pipe's p50 (lower is better).\n\
         raw: a bare ring of stamped slots in raw atomics (the SPSC ring's shape); raw-claim: the same\n  \
         with a CAS per message on each side (every MPMC queue's shape). Unpaced, so noisy.\n\
         stream x pipe / x raw: messages/s over the Unix pipe's / over the bare ring's of the same\n  \
         shape (raw for procring-spsc and -pipe, raw-claim for procring-queue); higher is better.\n\
         x p-pipe: messages/s over procring-pipe's of the same mode, size and consumer."
    );
    out
}

/// The stream rows of one consumer shape.
fn stream_table(out: &mut String, rows: &[Row], kind: Kind, title: &str) {
    let _ = writeln!(out, "\n{title}");
    let _ = writeln!(
        out,
        "{:<18} {:<5} {:>6} {:>10} {:>10} {:>8} {:>6} {:>8} {:>6}",
        "transport", "mode", "size", "msgs/s", "MB/s", "x pipe", "x raw", "x p-pipe", "lost"
    );
    for r in rows.iter().filter(|r| r.kind == kind) {
        let t = r.stream.expect("stream rows have throughput");
        // The baselines' rows are measured once, with the first consumer.
        let msgs_of = |of: Transport, kind: Kind, mode: Option<Mode>| {
            rows.iter()
                .find(|p| {
                    p.kind == kind
                        && p.transport == of
                        && p.size == r.size
                        && p.procs == (1, 1)
                        && mode.is_none_or(|m| p.mode == m)
                })
                .and_then(|p| p.stream.map(|s| s.msgs_per_s))
        };
        let ratio = |base: Option<f64>, digits: usize| {
            base.map_or("-".into(), |b| format!("{:.digits$}", t.msgs_per_s / b.max(1.0)))
        };
        // Each of procring's rings against the raw ring of its shape.
        let raw = match (r.transport, r.procs) {
            (Transport::Spsc | Transport::Pipe, _) => msgs_of(Transport::Raw, Kind::Stream, None),
            (Transport::Queue, (1, 1)) => msgs_of(Transport::RawClaim, Kind::Stream, None),
            _ => None,
        };
        let pipe = match (r.transport, r.procs) {
            (Transport::Spsc | Transport::Queue, (1, 1)) => msgs_of(Transport::Pipe, kind, Some(r.mode)),
            _ => None,
        };
        let _ = writeln!(
            out,
            "{:<18} {:<5} {:>6} {:>10} {:>10.1} {:>8} {:>6} {:>8} {:>6}",
            if r.procs == (1, 1) { r.transport.name().to_owned() } else { format!("{} 2x2", r.transport.name()) },
            r.mode.name(),
            r.size,
            si(t.msgs_per_s),
            t.bytes_per_s / 1e6,
            ratio(msgs_of(Transport::UnixPipe, Kind::Stream, None), 1),
            ratio(raw, 2),
            ratio(pipe, 2),
            t.lost,
        );
    }
}
