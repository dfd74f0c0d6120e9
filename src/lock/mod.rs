//! The locks over shared words: a robust process-shared mutex ([`mutex`])
//! whose dead holder is reported to the next locker, and a two-copy seqlock
//! ([`seqlock`]) that readers never wait on. Each module states its protocol.

pub(crate) mod mutex;
pub(crate) mod seqlock;
