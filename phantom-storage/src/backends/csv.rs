//! The spec's CSV image format. (Being written.)

use std::io::{Read, Write};

use crate::{Catalog, ImageMeta, Result, StorageFormat};

/// The spec's CSV layout, RFC 4180 quoting, checksummed. See `docs/formats/csv.md`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CsvFormat;

impl StorageFormat for CsvFormat {
    fn name(&self) -> &'static str {
        "csv"
    }
    fn detect(&self, head: &[u8]) -> bool {
        head.starts_with(b"# PhantomDB")
    }
    fn write(&self, _meta: &ImageMeta, _catalog: &Catalog, _out: &mut dyn Write) -> Result<()> {
        unimplemented!("CSV writer")
    }
    fn read(&self, _input: &mut dyn Read) -> Result<(ImageMeta, Catalog)> {
        unimplemented!("CSV reader")
    }
    fn read_meta(&self, _input: &mut dyn Read) -> Result<ImageMeta> {
        unimplemented!("CSV reader")
    }
}
