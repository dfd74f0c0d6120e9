//! Other channels beside procring's (feature `bench-peers`): crossbeam-channel
//! between two threads of the driver, pinned to the same two cores as the
//! processes of procring's rows, with the same messages and checks.

use super::peer::{ring_echo, ring_send};
use super::*;

impl<const N: usize> Put<N> for crossbeam_channel::Sender<Msg<N>> {
    #[inline]
    fn put(&mut self, m: Msg<N>) -> Result<(), Error> {
        self.send(m).map_err(|_| "the receiving side went away".into())
    }
}

impl<const N: usize> Take<N> for crossbeam_channel::Receiver<Msg<N>> {
    #[inline]
    fn take(&mut self) -> Result<Option<u64>, Error> {
        match self.recv_timeout(STALL) {
            Ok(m) => {
                std::hint::black_box(&m);
                Ok(Some(m.seq()))
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// A thread on the peer's core running `f`.
fn peer_thread(
    plan: &Plan,
    f: impl FnOnce() -> Result<(), Error> + Send + 'static,
) -> std::thread::JoinHandle<Result<(), String>> {
    let core = plan.cores[1];
    std::thread::spawn(move || pin(core).and_then(|()| f()).map_err(|e| e.to_string()))
}

fn join(t: std::thread::JoinHandle<Result<(), String>>) -> Result<(), Error> {
    t.join().map_err(|_| "the peer thread panicked")?.map_err(Into::into)
}

pub(super) fn crossbeam_pingpong<const N: usize>(plan: &Plan, total: u64, timed: &mut Timed) -> Result<(), Error> {
    let (mut tx, mut peer_rx) = crossbeam_channel::bounded::<Msg<N>>(64);
    let (mut peer_tx, mut rx) = crossbeam_channel::bounded::<Msg<N>>(64);
    let peer = peer_thread(plan, move || ring_echo(&mut peer_rx, &mut peer_tx));
    ring_pingpong(&mut tx, &mut rx, total, timed)?;
    drop(tx); // the peer sees the disconnection and returns
    join(peer)
}

pub(super) fn crossbeam_stream<const N: usize>(plan: &Plan, counter: &mut StreamCheck) -> Result<(), Error> {
    let (mut tx, mut rx) = crossbeam_channel::bounded::<Msg<N>>(stream_capacity(N));
    let run_for = plan.stream;
    let peer = peer_thread(plan, move || ring_send(&mut tx, 0, run_for).map(drop));
    ring_receive(&mut rx, counter)?;
    join(peer)
}
