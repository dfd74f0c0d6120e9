//! Serialized values through a pipe (`send`/`recv` of any serde type), and
//! their iterators.

use super::*;
use serde::de::DeserializeOwned;
use serde::Serialize;

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, MessageSendError> {
    postcard::to_allocvec(value).map_err(|e| MessageSendError::Encode(e.to_string()))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, MessageRecvError> {
    postcard::from_bytes(bytes).map_err(|e| MessageRecvError::Decode(e.to_string()))
}

impl Sender {
    /// Sends any serializable value (postcard-encoded), waiting for room.
    ///
    /// # Errors
    /// As [`Sender::send_bytes`], or [`MessageSendError::Encode`].
    pub fn send<T: Serialize>(&mut self, value: &T) -> Result<(), MessageSendError> {
        self.send_bytes(&encode(value)?)
    }

    /// As [`Sender::send`], if there is room now.
    ///
    /// # Errors
    /// As [`Sender::try_send_bytes`], or [`MessageSendError::Encode`].
    pub fn try_send<T: Serialize>(&mut self, value: &T) -> Result<(), MessageSendError> {
        self.try_send_bytes(&encode(value)?)
    }

    /// As [`Sender::send`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Sender::send_bytes_timeout`], or [`MessageSendError::Encode`].
    pub fn send_timeout<T: Serialize>(&mut self, value: &T, timeout: Duration) -> Result<(), MessageSendError> {
        self.send_bytes_timeout(&encode(value)?, timeout)
    }
}

impl Receiver {
    /// Receives a value sent with [`Sender::send`], waiting for it.
    ///
    /// # Errors
    /// As [`Receiver::recv_bytes`], or [`MessageRecvError::Decode`] (the
    /// message is consumed).
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T, MessageRecvError> {
        decode(&self.read()?)
    }

    /// As [`Receiver::recv`], if a message is ready now.
    ///
    /// # Errors
    /// As [`Receiver::try_recv_bytes`], or [`MessageRecvError::Decode`].
    pub fn try_recv<T: DeserializeOwned>(&mut self) -> Result<T, MessageRecvError> {
        decode(&self.try_read()?)
    }

    /// As [`Receiver::recv`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Receiver::recv_bytes_timeout`], or [`MessageRecvError::Decode`].
    pub fn recv_timeout<T: DeserializeOwned>(&mut self, timeout: Duration) -> Result<T, MessageRecvError> {
        decode(&self.read_timeout(timeout)?)
    }

    /// A blocking iterator over received values: each is a `Result`, since
    /// a message may not decode as `T`; it ends once the sender is gone
    /// and the pipe is drained.
    ///
    /// ```
    /// let (mut a, mut b) = procring::Pipe::new(4096)?;
    /// a.send(&"one")?;
    /// a.send(&"two")?;
    /// drop(a);
    /// let got: Result<Vec<String>, _> = b.receiver().iter().collect();
    /// assert_eq!(got?, ["one", "two"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter<T: DeserializeOwned>(&mut self) -> Values<'_, T> {
        Values { rx: self, wait: true, _t: std::marker::PhantomData }
    }

    /// An iterator over the values ready now; it ends at the first
    /// receive that would wait (or at disconnection).
    pub fn try_iter<T: DeserializeOwned>(&mut self) -> Values<'_, T> {
        Values { rx: self, wait: false, _t: std::marker::PhantomData }
    }

    /// As [`Receiver::iter`], owning the receiver. (Not `IntoIterator`:
    /// the type received is chosen per call, not by the receiver.)
    pub fn into_values<T: DeserializeOwned>(self) -> IntoValues<T> {
        IntoValues { rx: self, _t: std::marker::PhantomData }
    }
}

/// A blocking iterator over the values of a pipe [`Receiver`] it owns
/// ([`Receiver::into_values`]).
#[derive(Debug)]
pub struct IntoValues<T> {
    rx: Receiver,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Iterator for IntoValues<T> {
    type Item = Result<T, MessageRecvError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.rx.iter().next()
    }
}

/// An iterator over a pipe [`Receiver`]'s values
/// ([`Receiver::iter`], [`Receiver::try_iter`]).
#[derive(Debug)]
pub struct Values<'a, T> {
    rx: &'a mut Receiver,
    wait: bool,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Iterator for Values<'_, T> {
    type Item = Result<T, MessageRecvError>;
    fn next(&mut self) -> Option<Self::Item> {
        let got = if self.wait { self.rx.recv() } else { self.rx.try_recv() };
        match got {
            Err(MessageRecvError::Disconnected | MessageRecvError::Empty) => None,
            other => Some(other),
        }
    }
}

impl Connection {
    /// Sends a serializable value to the other end (see [`Sender::send`]).
    ///
    /// # Errors
    /// As [`Sender::send`].
    pub fn send<T: Serialize>(&mut self, value: &T) -> Result<(), MessageSendError> {
        self.tx.send(value)
    }

    /// Receives a value from the other end (see [`Receiver::recv`]).
    ///
    /// # Errors
    /// As [`Receiver::recv`].
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T, MessageRecvError> {
        self.rx.recv()
    }
}
