//! The framing the `recovery_image` target reads a data directory from: a sequence of entries
//! `name index (u8) · length (u16 LE) · bytes`, each putting one file of database `d` into the
//! directory.
//!
//! The name index picks from [`IMAGE_FILES`] modulo its length; a length past the end of the
//! input takes what is left (an entry cut inside its length field is an empty file); a later
//! entry for the same name replaces the earlier one; at most [`MAX_IMAGE_ENTRIES`] entries are
//! read and anything after them is ignored. Every byte string decodes to some directory, so
//! the fuzzer never wastes an input on the framing.

/// The file names an image can hold (all belong to database `d`).
pub const IMAGE_FILES: [&str; 5] = [
    "d.db",
    "d.log",
    "d.log.000002",
    "d_snapshot_20240101_000000",
    "d_snapshot_20240101_000001",
];

/// Most entries read from one image.
pub const MAX_IMAGE_ENTRIES: usize = 4;

/// Splits `data` into `(file name, content)` pairs; later entries for a name replace earlier
/// ones, so names are unique in the result.
pub fn decode_image(mut data: &[u8]) -> Vec<(&'static str, &[u8])> {
    let mut files: Vec<(&'static str, &[u8])> = Vec::new();
    for _ in 0..MAX_IMAGE_ENTRIES {
        let Some((&index, rest)) = data.split_first() else {
            break;
        };
        let name = IMAGE_FILES[usize::from(index) % IMAGE_FILES.len()];
        let (len, rest) = match rest {
            [lo, hi, rest @ ..] => (usize::from(u16::from_le_bytes([*lo, *hi])), rest),
            // Cut inside the length field: an empty file.
            _ => (0, &[][..]),
        };
        let (bytes, rest) = rest.split_at(len.min(rest.len()));
        files.retain(|(n, _)| *n != name);
        files.push((name, bytes));
        data = rest;
    }
    files
}

/// Frames files for [`decode_image`]: `files` are `(index into IMAGE_FILES, content)`.
/// Content longer than `u16::MAX` bytes is cut to that length.
pub fn encode_image(files: &[(u8, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (index, bytes) in files {
        let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
        out.push(*index);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(bytes.get(..usize::from(len)).unwrap_or(bytes));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_files_decode_back() {
        let image = encode_image(&[(0, b"main"), (1, b""), (4, b"snap")]);
        assert_eq!(
            decode_image(&image),
            vec![
                ("d.db", &b"main"[..]),
                ("d.log", &b""[..]),
                ("d_snapshot_20240101_000001", &b"snap"[..]),
            ]
        );
    }

    #[test]
    fn short_lengths_and_repeated_names_still_decode() {
        // Index 5 wraps to d.db; the length says 9 but only 2 bytes follow.
        assert_eq!(
            decode_image(&[5, 9, 0, b'a', b'b']),
            vec![("d.db", &b"ab"[..])]
        );
        // An entry cut inside its length field is an empty file; it replaces the earlier d.log.
        assert_eq!(
            decode_image(&[1, 1, 0, b'x', 1, b'y']),
            vec![("d.log", &b""[..])]
        );
        assert!(decode_image(&[]).is_empty());
    }
}
