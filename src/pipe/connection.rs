//! A duplex pipe's end ([`Connection`]), and [`Pipe`], the constructors
//! (Python's `multiprocessing.Pipe()`). Both are at the crate's root.

use super::*;

/// One end of a duplex pipe: sends to and receives from the other end.
/// [`Connection::sender`] and [`Connection::receiver`] give every form of
/// every call; the common ones are here too.
#[derive(Debug)]
pub struct Connection {
    pub(super) tx: Sender,
    pub(super) rx: Receiver,
}

impl Connection {
    /// This end's sending half.
    pub fn sender(&mut self) -> &mut Sender {
        &mut self.tx
    }

    /// This end's receiving half.
    pub fn receiver(&mut self) -> &mut Receiver {
        &mut self.rx
    }

    /// Splits the end into its halves (to use them from two threads).
    pub fn split(self) -> (Sender, Receiver) {
        (self.tx, self.rx)
    }

    /// The other end's process id if it died without dropping its end: the
    /// reason behind a `Disconnected`. `None` while it runs, and if it
    /// dropped its end.
    pub fn peer_died(&self) -> Option<u32> {
        self.rx.peer_died().or_else(|| self.tx.peer_died())
    }

    /// See [`Sender::send_bytes`].
    ///
    /// # Errors
    /// As [`Sender::send_bytes`].
    #[inline]
    pub fn send_bytes(&mut self, msg: &[u8]) -> Result<(), MessageSendError> {
        self.tx.send_bytes(msg)
    }

    /// See [`Receiver::recv_bytes`].
    ///
    /// # Errors
    /// As [`Receiver::recv_bytes`].
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>, MessageRecvError> {
        self.rx.recv_bytes()
    }

    /// See [`Receiver::recv_bytes_into`].
    ///
    /// # Errors
    /// As [`Receiver::recv_bytes_into`].
    #[inline]
    pub fn recv_bytes_into(&mut self, buf: &mut [u8]) -> Result<usize, MessageRecvError> {
        self.rx.recv_bytes_into(buf)
    }

    /// See [`Receiver::poll`].
    pub fn poll(&mut self, timeout: Duration) -> bool {
        self.rx.poll(timeout)
    }

    /// See [`Sender::reserve`].
    ///
    /// # Errors
    /// As [`Sender::reserve`].
    #[inline]
    pub fn reserve(&mut self, len: usize) -> Result<SendBuf<'_>, MessageSendError> {
        self.tx.reserve(len)
    }

    /// See [`Receiver::read`].
    ///
    /// # Errors
    /// As [`Receiver::read`].
    #[inline]
    pub fn read(&mut self) -> Result<RecvBuf<'_>, MessageRecvError> {
        self.rx.read()
    }
}

/// Constructors for pipes (Python's `multiprocessing.Pipe()`).
#[derive(Debug)]
pub struct Pipe(());

impl Pipe {
    /// An in-process duplex pipe: two connected ends, `capacity` bytes each way.
    ///
    /// # Errors
    /// [`CreateError::InvalidCapacity`] unless `capacity` is a power of two
    /// from 64 bytes to 4 GiB that this process's memory holds.
    #[allow(clippy::new_ret_no_self)] // as Python's Pipe(): a pair of connected ends
    pub fn new(capacity: usize) -> Result<(Connection, Connection), CreateError> {
        let cap = check_capacity(capacity)?;
        let shared = Arc::new(Shared::heap(2, cap)?);
        for dir in 0..2 {
            let _ = attach(&shared, dir, Role::Producer, Identity::local());
            let _ = attach(&shared, dir, Role::Consumer, Identity::local());
        }
        let wait = Wait::local();
        let a = Connection { tx: Sender::new(shared.clone(), 0, wait), rx: Receiver::new(shared.clone(), 1, wait) };
        let b = Connection { tx: Sender::new(shared.clone(), 1, wait), rx: Receiver::new(shared, 0, wait) };
        Ok((a, b))
    }

    /// An in-process simplex pipe: a sending end and a receiving end.
    ///
    /// # Errors
    /// As [`Pipe::new`].
    pub fn simplex(capacity: usize) -> Result<(Sender, Receiver), CreateError> {
        let cap = check_capacity(capacity)?;
        let shared = Arc::new(Shared::heap(1, cap)?);
        let _ = attach(&shared, 0, Role::Producer, Identity::local());
        let _ = attach(&shared, 0, Role::Consumer, Identity::local());
        let wait = Wait::local();
        Ok((Sender::new(shared.clone(), 0, wait), Receiver::new(shared, 0, wait)))
    }
}
