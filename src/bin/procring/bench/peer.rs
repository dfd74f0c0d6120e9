//! The peer process (`bench-peer`): the other end of every measurement.

use super::*;

pub fn peer(a: &PeerArgs) -> Result<(), Error> {
    pin(a.core)?;
    let t = Transport::parse(&a.transport)?;
    let m = if a.mode == "poll" { Mode::Poll } else { Mode::Block };
    let stream_for = Duration::from_millis(a.stream_ms);
    match (t, a.kind.as_str()) {
        (Transport::Floor, _) => {
            let floor = FloorMap::open(&a.name, a.floor_lines)?;
            for i in 1.. {
                let mut v = 0;
                spin_until(|| {
                    v = floor.ping(i).load(Ordering::Acquire);
                    v == i || v == u64::MAX
                })?;
                if v == u64::MAX {
                    break;
                }
                floor.pong(i).store(i, Ordering::Release);
            }
            Ok(())
        }
        (Transport::Raw | Transport::RawClaim, _) => with_size!(a.size, raw_send, a, t, stream_for),
        (Transport::Crossbeam, _) => Err("crossbeam-channel runs in the driver's threads, not in a peer".into()),
        (Transport::Spsc | Transport::Queue | Transport::Pipe, "stream-copy") => {
            with_size!(a.size, value_send, a, t, m, stream_for)
        }
        (Transport::Spsc, "pingpong") => with_size!(a.size, spsc_echo, a, m),
        (Transport::Spsc, _) => with_size!(a.size, spsc_send, a, m, stream_for),
        (Transport::Queue, "pingpong") => with_size!(a.size, queue_echo, a, m),
        (Transport::Queue, _) => with_size!(a.size, queue_send, a, m, stream_for),
        (Transport::Pipe, "pingpong") => with_size!(a.size, pipe_echo, a, m),
        (Transport::Pipe, _) => with_size!(a.size, pipe_send, a, m, stream_for),
        (Transport::UnixPipe, kind) => {
            // Raw, unbuffered ends: std's stdout would hold an echo back.
            use std::os::fd::AsFd;
            let mut r = File::from(io::stdin().as_fd().try_clone_to_owned()?);
            let mut w = File::from(io::stdout().as_fd().try_clone_to_owned()?);
            if kind == "pingpong" {
                byte_echo(&mut r, &mut w, a.size)
            } else {
                byte_send(&mut w, a.size, stream_for)
            }
        }
        (Transport::UnixSocket, kind) => {
            let mut s = UnixStream::connect(socket_path(&a.name))?;
            if kind == "pingpong" {
                let mut r = s.try_clone()?;
                byte_echo(&mut r, &mut s, a.size)
            } else {
                byte_send(&mut s, a.size, stream_for)
            }
        }
    }
}

pub(super) fn byte_echo(r: &mut dyn Read, w: &mut dyn Write, size: usize) -> Result<(), Error> {
    let mut msg = vec![0u8; size];
    loop {
        match r.read_exact(&mut msg) {
            Ok(()) => w.write_all(&msg)?,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

/// One `write` per message: a message-oriented sender, as latency demands.
pub(super) fn byte_send(w: &mut dyn Write, size: usize, run_for: Duration) -> Result<(), Error> {
    let mut msg = vec![0xA5u8; size];
    let start = Instant::now();
    let mut seq = 0u64;
    while start.elapsed() < run_for {
        for _ in 0..256 {
            msg[..8].copy_from_slice(&seq.to_le_bytes());
            w.write_all(&msg)?;
            seq += 1;
        }
    }
    Ok(())
}

pub(super) fn ring_echo<const N: usize>(rx: &mut impl Take<N>, tx: &mut impl Put<N>) -> Result<(), Error> {
    let mut msg = Msg::new(0xA5, 0);
    while let Some(seq) = rx.take()? {
        msg.set_seq(seq);
        tx.put(msg)?;
    }
    Ok(())
}

/// Sends numbered messages for `run_for`; returns how many.
pub(super) fn ring_send<const N: usize>(tx: &mut impl Put<N>, producer: u64, run_for: Duration) -> Result<u64, Error> {
    let mut msg = Msg::new(0xA5, 0);
    let start = Instant::now();
    let mut seq = producer << PRODUCER_SHIFT;
    while start.elapsed() < run_for {
        for _ in 0..1024 {
            msg.set_seq(seq);
            tx.put(msg)?;
            seq += 1;
        }
    }
    Ok(seq - (producer << PRODUCER_SHIFT))
}

pub(super) fn spsc_echo<const N: usize>(a: &PeerArgs, m: Mode) -> Result<(), Error> {
    let opts = ring_options(m, a.spin);
    let mut rx = Consumer::<Msg<N>>::open_with(&format!("/{}-a", a.name), &opts)?;
    let mut tx = Producer::<Msg<N>>::open_with(&format!("/{}-b", a.name), &opts)?;
    ring_echo(&mut rx, &mut tx)
}

pub(super) fn queue_echo<const N: usize>(a: &PeerArgs, m: Mode) -> Result<(), Error> {
    let opts = ring_options(m, a.spin);
    let mut rx = Queue::<Msg<N>>::open_with(&format!("/{}-a", a.name), &opts)?;
    let mut tx = Queue::<Msg<N>>::open_with(&format!("/{}-b", a.name), &opts)?;
    ring_echo(&mut rx, &mut tx)
}

pub(super) fn pipe_echo<const N: usize>(a: &PeerArgs, m: Mode) -> Result<(), Error> {
    let (mut tx, mut rx) = Pipe::open_with(&format!("/{}-a", a.name), &ring_options(m, a.spin))?.split();
    ring_echo::<N>(&mut rx, &mut tx)
}

pub(super) fn pipe_send<const N: usize>(a: &PeerArgs, m: Mode, run_for: Duration) -> Result<(), Error> {
    let mut tx = Pipe::open_sender(&format!("/{}-a", a.name), &ring_options(m, a.spin))?;
    ring_send::<N>(&mut tx, 0, run_for)?;
    Ok(()) // dropping `tx` disconnects the driver
}

pub(super) fn spsc_send<const N: usize>(a: &PeerArgs, m: Mode, run_for: Duration) -> Result<(), Error> {
    let mut tx = Producer::<Msg<N>>::open_with(&format!("/{}-a", a.name), &ring_options(m, a.spin))?;
    ring_send(&mut tx, 0, run_for)?;
    Ok(()) // dropping `tx` disconnects the driver
}

pub(super) fn queue_send<const N: usize>(a: &PeerArgs, m: Mode, run_for: Duration) -> Result<(), Error> {
    let mut tx = Queue::<Msg<N>>::open_with(&format!("/{}-a", a.name), &ring_options(m, a.spin))?;
    let sent = ring_send(&mut tx, a.producer, run_for)?;
    if a.producers == 1 {
        tx.shutdown(); // the only producer: the stream ends here
    } else {
        println!("{sent}"); // the driver closes the queue and counts
    }
    Ok(())
}

/// The by-value streams' sender: `[u8; N]` messages stamped at both ends
/// (see `stamp`), one `send` per message, for `run_for`.
pub(super) fn value_send<const N: usize>(a: &PeerArgs, t: Transport, m: Mode, run_for: Duration) -> Result<(), Error> {
    let (name, opts) = (format!("/{}-a", a.name), ring_options(m, a.spin));
    let gone = |_| -> Error { "the receiving side went away".into() };
    match t {
        Transport::Spsc => {
            let mut tx = Producer::<[u8; N]>::open_with(&name, &opts)?;
            send_stamped(|msg| tx.send(msg).map_err(gone), run_for)
        }
        Transport::Queue => {
            let tx = Queue::<[u8; N]>::open_with(&name, &opts)?;
            send_stamped(|msg| tx.send(msg).map_err(gone), run_for)?;
            tx.shutdown(); // the stream ends here
            Ok(())
        }
        Transport::Pipe => {
            let mut tx = Pipe::open_sender(&name, &opts)?;
            send_stamped(|msg: [u8; N]| Ok(tx.send_bytes(&msg)?), run_for)
        }
        _ => unreachable!("only procring's rings have a by-value stream"),
    }
}

/// Sends numbered messages through `put` for `run_for`.
#[inline(always)]
fn send_stamped<const N: usize>(
    mut put: impl FnMut([u8; N]) -> Result<(), Error>,
    run_for: Duration,
) -> Result<(), Error> {
    // One message, restamped each time, as `ring_send` does: the sender's
    // work is the same as in the `stream` rows, and only the consumer
    // differs.
    let mut msg = [0xA5; N];
    let start = Instant::now();
    let mut seq = 0u64;
    while start.elapsed() < run_for {
        for _ in 0..1024 {
            stamp(&mut msg, seq);
            put(msg)?;
            seq += 1;
        }
    }
    Ok(())
}
