//! The one row shape every system stores: `id` int primary key, `name` (12 bytes), `email`
//! (22 bytes), `score` float. The same logical rows go to every system; key-value stores get
//! the key as 8 big-endian bytes and the value in a small length-prefixed encoding.

use anyhow::{Result, bail};

/// One logical row.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Row {
    /// Primary key.
    pub(crate) id: i64,
    /// `user` + 8 digits: 12 bytes.
    pub(crate) name: String,
    /// `u` + 9 digits + `@example.com`: 22 bytes.
    pub(crate) email: String,
    /// A float derived from the id.
    pub(crate) score: f64,
}

impl Row {
    /// The row with primary key `id` (deterministic, so every system gets the same data).
    pub(crate) fn new(id: i64) -> Row {
        #[allow(clippy::cast_precision_loss)]
        let score = (id as f64 * 0.618_033_988_75).fract() * 100.0;
        Row {
            id,
            name: format!("user{:08}", id % 100_000_000),
            email: format!("u{:09}@example.com", id % 1_000_000_000),
            score,
        }
    }

    /// The key-value key: the id as big-endian bytes (keys then sort by id for ids ≥ 0).
    pub(crate) fn key(id: i64) -> [u8; 8] {
        id.to_be_bytes()
    }

    /// The key-value value: `len name len email score(f64 LE)`.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(2 + self.name.len() + self.email.len() + 8);
        push_str(&mut v, &self.name);
        push_str(&mut v, &self.email);
        v.extend_from_slice(&self.score.to_le_bytes());
        v
    }

    /// Decodes what [`Row::encode`] wrote.
    pub(crate) fn decode(id: i64, bytes: &[u8]) -> Result<Row> {
        let (name, rest) = take_str(bytes, 0)?;
        let (email, rest) = take_str(rest, 1 + name.len())?;
        let Ok(score) = <[u8; 8]>::try_from(rest) else {
            bail!("row {id}: expected 8 score bytes, found {}", rest.len());
        };
        Ok(Row {
            id,
            name,
            email,
            score: f64::from_le_bytes(score),
        })
    }
}

fn push_str(v: &mut Vec<u8>, s: &str) {
    // Names and emails of generated rows are far below 256 bytes.
    v.push(u8::try_from(s.len()).unwrap_or(u8::MAX));
    v.extend_from_slice(s.as_bytes());
}

fn take_str(bytes: &[u8], offset: usize) -> Result<(String, &[u8])> {
    let Some((&len, rest)) = bytes.split_first() else {
        bail!("value truncated at byte {offset}");
    };
    let len = usize::from(len);
    if rest.len() < len {
        bail!("string of {len} bytes at byte {offset} runs past the value's end");
    }
    let (s, rest) = rest.split_at(len);
    Ok((String::from_utf8(s.to_vec())?, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_have_the_issue_shape_and_round_trip_through_the_kv_encoding() {
        let r = Row::new(123_456);
        assert_eq!(r.name.len(), 12);
        assert_eq!(r.email.len(), 22);
        assert_eq!(Row::decode(r.id, &r.encode()).unwrap(), r);
        assert!(Row::decode(1, &[5, b'a']).is_err());
    }
}
