//! A message type's identity across programs: its wire name.
//!
//! Opening a segment checks that the caller's element type is the
//! creator's: the same size, the same alignment, and the same *wire name*,
//! which the type declares ([`Message::NAME`]). The name is the type's, not
//! its crate's or module's, so a producer binary and a consumer binary that
//! each define the same `#[repr(C)]` struct (or share it through a common
//! crate) and declare the same name open each other's segments, whatever
//! their crates are called and whichever compiler built them. A different
//! name, size or alignment is `OpenError::TypeMismatch`, naming both.

use bytemuck::Pod;

/// A type that can travel through a named segment: [`Pod`] (valid for every
/// bit pattern, no pointers), with a name every program exchanging it
/// declares. Primitives and arrays of them have one; declare it for your
/// own types with [`message!`](crate::message):
///
/// ```
/// #[derive(Clone, Copy, procring::Pod, procring::Zeroable)]
/// #[bytemuck(crate = "procring::bytemuck")]
/// #[repr(C)]
/// struct Tick {
///     price: f64,
///     qty: u32,
///     venue: u32,
/// }
/// procring::message!(Tick); // the wire name "Tick"
///
/// #[derive(Clone, Copy, procring::Pod, procring::Zeroable)]
/// #[bytemuck(crate = "procring::bytemuck")]
/// #[repr(C)]
/// struct Quote([f64; 2]);
/// procring::message!(Quote = "market.quote/v2"); // a name of your choosing
/// ```
///
/// Within one process (`queue::bounded`, `Queue::new`, `spsc::channel`)
/// any `Pod` type will do: there is nobody else to agree with.
pub trait Message: Pod {
    /// The type's name on the wire: the same in every program that sends
    /// or receives it, and different for every other type of the same size
    /// and alignment that could be mistaken for it.
    const NAME: &'static str;
}

/// Declares a type's wire name ([`Message`]): `message!(Tick)` names it
/// `"Tick"`, `message!(Tick = "market.tick/v1")` as given.
#[macro_export]
macro_rules! message {
    ($ty:ident) => {
        impl $crate::Message for $ty {
            const NAME: &'static str = ::core::stringify!($ty);
        }
    };
    ($ty:ty = $name:expr) => {
        impl $crate::Message for $ty {
            const NAME: &'static str = $name;
        }
    };
}

macro_rules! primitives {
    ($($t:ty),*) => {
        $(impl Message for $t {
            const NAME: &'static str = ::core::stringify!($t);
        })*
    };
}

primitives!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64);

/// An array is named by its element: its length is in its size, which is
/// checked beside the name.
impl<T: Message, const N: usize> Message for [T; N]
where
    [T; N]: Pod,
{
    const NAME: &'static str = T::NAME;
}
