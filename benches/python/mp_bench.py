#!/usr/bin/env python3
"""Python's multiprocessing.Queue and Pipe, measured like `procring bench`.

Standard library only. Two processes pinned to two cores (default: the
first two this process may use): a ping-pong of one message (round-trip
percentiles over ROUND_TRIPS after a warm-up) and a one-way stream per size
(messages/s, the receiver checking every sequence number).

    python3 benches/python/mp_bench.py [--quick]

Messages are `bytes` of the given size whose first 8 bytes are a sequence
number, sent as objects (pickled), which is how Python code uses them.
"""
import json
import multiprocessing as mp
import os
import struct
import sys
import time

QUICK = "--quick" in sys.argv
ROUND_TRIPS = 20_000 if QUICK else 100_000
WARMUP = 2_000 if QUICK else 10_000
STREAM_SECONDS = 0.3 if QUICK else 1.0
SIZES = [8, 64, 4096]
CORES = sorted(os.sched_getaffinity(0))[:2]
STOP = None


def pin(core):
    os.sched_setaffinity(0, {core})


def message(seq, size):
    return struct.pack("<Q", seq) + bytes(size - 8)


def seq_of(msg):
    return struct.unpack_from("<Q", msg)[0]


# --- peers ---------------------------------------------------------------

def queue_echo(core, inq, outq):
    pin(core)
    while (m := inq.get()) is not STOP:
        outq.put(m)


def pipe_echo(core, conn):
    pin(core)
    while (m := conn.recv()) is not STOP:
        conn.send(m)


def queue_stream(core, q, size, seconds):
    pin(core)
    seq, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(256):
            q.put(message(seq, size))
            seq += 1
    q.put(STOP)


def pipe_stream(core, conn, size, seconds):
    pin(core)
    seq, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(256):
            conn.send(message(seq, size))
            seq += 1
    conn.send(STOP)


# --- driver --------------------------------------------------------------

def percentiles(samples):
    s = sorted(samples)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))]
    return {"p50_ns": pick(0.5), "p90_ns": pick(0.9), "p99_ns": pick(0.99), "p999_ns": pick(0.999), "max_ns": s[-1]}


def pingpong(kind, size):
    if kind == "queue":
        a, b = mp.Queue(), mp.Queue()
        p = mp.Process(target=queue_echo, args=(CORES[1], a, b))
        send, recv = a.put, b.get
    else:
        mine, theirs = mp.Pipe()
        p = mp.Process(target=pipe_echo, args=(CORES[1], theirs))
        send, recv = mine.send, mine.recv
    p.start()
    samples = []
    for i in range(WARMUP + ROUND_TRIPS):
        m = message(i, size)
        t0 = time.perf_counter_ns()
        send(m)
        back = recv()
        dt = time.perf_counter_ns() - t0
        assert seq_of(back) == i, "echo out of order"
        if i >= WARMUP:
            samples.append(dt)
    send(STOP)
    p.join()
    return percentiles(samples)


def stream(kind, size):
    if kind == "queue":
        q = mp.Queue()
        p = mp.Process(target=queue_stream, args=(CORES[1], q, size, STREAM_SECONDS))
        recv = q.get
    else:
        mine, theirs = mp.Pipe(duplex=False)
        p = mp.Process(target=pipe_stream, args=(CORES[1], theirs, size, STREAM_SECONDS))
        recv = mine.recv
    p.start()
    received, expected, lost, first = 0, 0, 0, None
    while (m := recv()) is not STOP:
        if first is None:
            first = time.perf_counter()
        seq = seq_of(m)
        lost += abs(seq - expected)
        expected = seq + 1
        received += 1
    secs = time.perf_counter() - first
    p.join()
    rate = (received - 1) / secs if secs > 0 else 0.0
    return {"msgs_per_s": round(rate), "bytes_per_s": round(rate * size), "lost": lost}


def main():
    pin(CORES[0])
    print(f"python {sys.version.split()[0]}, cores {CORES}, {ROUND_TRIPS} round trips, {STREAM_SECONDS}s streams",
          file=sys.stderr)
    for kind in ["queue", "pipe"]:
        row = {"transport": f"python-mp-{kind}", "mode": "block", "kind": "pingpong", "size": 64}
        row.update(pingpong(kind, 64))
        print(json.dumps(row), flush=True)
        for size in SIZES:
            row = {"transport": f"python-mp-{kind}", "mode": "block", "kind": "stream", "size": size}
            row.update(stream(kind, size))
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
