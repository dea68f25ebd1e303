//! The [`LogSink`](crate::LogSink) implementations, together: the real segmented log
//! ([`Wal`]), an in-memory one ([`MemorySink`]), a no-op one ([`NullSink`]) and a plain-text
//! audit log in the spec's line format ([`TextAuditSink`]).

mod memory;
mod null;
mod text;

pub use crate::wal::Wal;
pub use memory::MemorySink;
pub use null::NullSink;
pub use text::TextAuditSink;
