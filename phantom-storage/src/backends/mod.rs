//! The image formats shipped with PhantomDB: the spec's CSV layout and a binary format.

pub mod binary;
pub mod csv;

pub use binary::BinaryFormat;
pub use csv::CsvFormat;

use crate::format::StorageFormat;

/// The shipped format that can read a file starting with `head`, if any.
pub fn detect(head: &[u8]) -> Option<Box<dyn StorageFormat>> {
    if BinaryFormat.detect(head) {
        Some(Box::new(BinaryFormat))
    } else if CsvFormat.detect(head) {
        Some(Box::new(CsvFormat))
    } else {
        None
    }
}
