//! The binary image format. (Being written.)

use std::io::{Read, Write};

use crate::{Catalog, ImageMeta, Result, StorageFormat};

/// Magic, version, postcard payloads in checksummed blocks, end marker. See `docs/formats/binary.md`.
#[derive(Clone, Copy, Debug, Default)]
pub struct BinaryFormat;

impl StorageFormat for BinaryFormat {
    fn name(&self) -> &'static str {
        "binary"
    }
    fn detect(&self, head: &[u8]) -> bool {
        head.starts_with(b"PHDBIMG\0")
    }
    fn write(&self, _meta: &ImageMeta, _catalog: &Catalog, _out: &mut dyn Write) -> Result<()> {
        unimplemented!("binary writer")
    }
    fn read(&self, _input: &mut dyn Read) -> Result<(ImageMeta, Catalog)> {
        unimplemented!("binary reader")
    }
    fn read_meta(&self, _input: &mut dyn Read) -> Result<ImageMeta> {
        unimplemented!("binary reader")
    }
}
