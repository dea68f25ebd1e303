//! The postcard wire format of rows and mutations, encoded and decoded by hand on the hot
//! paths: writing and reading the rows of a binary image (`backends::binary`), and decoding the
//! batches of mutations that log records carry ([`decode_mutations`]).
//!
//! Rows are postcard `(RowId, Vec<Value>)`; a batch is a postcard `Vec<Mutation>`. Both are
//! serde's formats of those types, so postcard itself stays a valid reader and writer of every
//! byte here; the hand-written loops exist because they are the whole cost of reading an image
//! or replaying a log apart from building the tables (the serde path spends a third of its time
//! in visitor plumbing, and builds every value on the stack before moving it). The tests below
//! hold each one to postcard: the encoder gives postcard's bytes, the decoders accept exactly
//! what postcard accepts, with the same result.

use std::mem::MaybeUninit;

use chrono::DateTime;
use compact_str::CompactString;

use crate::catalog::Mutation;
use crate::table::{Row, RowId};
use crate::value::Value;

/// A length as stored (`usize` is at most 64 bits on every target Rust supports).
pub(crate) fn len_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Appends a postcard varint (LEB128, least significant group first).
#[inline]
fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

#[inline]
fn zigzag_encode_i64(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

#[inline]
fn zigzag_encode_i32(n: i32) -> u64 {
    u64::from(((n << 1) ^ (n >> 31)) as u32)
}

/// Appends the postcard encoding of `(id, values)`.
pub(crate) fn encode_row(id: RowId, values: &[Value], buf: &mut Vec<u8>) {
    use chrono::{Datelike, Timelike};

    put_varint(buf, id);
    put_varint(buf, len_u64(values.len()));
    // Variant indexes of `Value`, in declaration order (docs/formats/binary.md).
    for v in values {
        match v {
            Value::Null => buf.push(0),
            Value::Int(i) => {
                buf.push(1);
                put_varint(buf, zigzag_encode_i64(*i));
            }
            Value::Float(f) => {
                buf.push(2);
                buf.extend_from_slice(&f.to_bits().to_le_bytes());
            }
            Value::String(s) => {
                buf.push(3);
                put_varint(buf, len_u64(s.len()));
                buf.extend_from_slice(s.as_bytes());
            }
            Value::Bool(b) => {
                buf.push(4);
                buf.push(u8::from(*b));
            }
            Value::Date(d) => {
                buf.push(5);
                put_varint(buf, zigzag_encode_i32(d.num_days_from_ce()));
            }
            Value::Time(t) => {
                buf.push(6);
                put_varint(buf, u64::from(t.num_seconds_from_midnight()));
            }
            Value::Timestamp(ts) => {
                buf.push(7);
                put_varint(buf, zigzag_encode_i64(ts.and_utc().timestamp()));
            }
        }
    }
}

/// Why a row does not decode.
pub(crate) type DecodeResult<T> = std::result::Result<T, &'static str>;

/// A row as stored: its id and its values.
#[cfg(test)]
type DecodedRow = (RowId, Vec<Value>);

/// A read position in an encoded payload.
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    #[inline]
    fn byte(&mut self) -> DecodeResult<u8> {
        let (&b, rest) = self
            .bytes
            .split_first()
            .ok_or("the block ends inside a row")?;
        self.bytes = rest;
        Ok(b)
    }

    #[inline]
    fn take(&mut self, n: usize) -> DecodeResult<&'a [u8]> {
        if n > self.bytes.len() {
            return Err("the block ends inside a row");
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    /// A postcard `str`: a varint length, then that many bytes of UTF-8.
    #[inline]
    fn str(&mut self) -> DecodeResult<&'a str> {
        let len = usize::try_from(self.varint_u64()?).map_err(|_| "string too long")?;
        std::str::from_utf8(self.take(len)?).map_err(|_| "string not UTF-8")
    }

    /// A postcard varint of at most `max_bytes` bytes whose last byte is at most `max_last`
    /// (so the value fits the type), as postcard checks it.
    #[inline]
    fn varint(&mut self, max_bytes: u32, max_last: u8) -> DecodeResult<u64> {
        // One byte (a value below 128: tags, lengths, small ints) is the common case.
        if let Some((&b, rest)) = self.bytes.split_first()
            && b < 0x80
        {
            self.bytes = rest;
            return Ok(u64::from(b));
        }
        let mut out: u64 = 0;
        for i in 0..max_bytes {
            let b = self.byte()?;
            out |= u64::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                if i == max_bytes - 1 && b > max_last {
                    break;
                }
                return Ok(out);
            }
        }
        Err("bad varint")
    }

    #[inline]
    fn varint_u64(&mut self) -> DecodeResult<u64> {
        self.varint(10, 0x01)
    }

    #[inline]
    fn varint_u32(&mut self) -> DecodeResult<u32> {
        // Five bytes with a last byte ≤ 0x0F hold at most 32 bits.
        self.varint(5, 0x0F)
            .and_then(|v| u32::try_from(v).map_err(|_| "bad varint"))
    }

    #[inline]
    fn zigzag_i64(&mut self) -> DecodeResult<i64> {
        let n = self.varint_u64()?;
        Ok(((n >> 1) as i64) ^ -((n & 1) as i64))
    }

    #[inline]
    fn zigzag_i32(&mut self) -> DecodeResult<i32> {
        let n = self.varint_u32()?;
        Ok(((n >> 1) as i32) ^ -((n & 1) as i32))
    }

    #[inline(always)]
    fn value(&mut self) -> DecodeResult<Value> {
        self.value_with(Owned)
    }

    /// Decodes a value and hands it to `out`, constructed in each arm: with `out` writing to
    /// its final slot, the value is stored there directly, not built on the stack by partial
    /// stores and then loaded back whole (a store-forwarding stall that was half of this
    /// loop's time in the profile). Strings go through [`PutValue::put_str`] for the same
    /// reason.
    #[inline(always)]
    fn value_with<P: PutValue>(&mut self, out: P) -> DecodeResult<P::Out> {
        // Variant indexes of `Value`, in declaration order (docs/formats/binary.md).
        Ok(match self.varint_u32()? {
            0 => out.put(Value::Null),
            1 => out.put(Value::Int(self.zigzag_i64()?)),
            2 => out.put(Value::Float(f64::from_le_bytes(le(self.take(8)?)))),
            3 => out.put_str(self.str()?),
            4 => out.put(Value::Bool(match self.byte()? {
                0 => false,
                1 => true,
                _ => return Err("bad bool"),
            })),
            5 => out.put(Value::Date(
                chrono::NaiveDate::from_num_days_from_ce_opt(self.zigzag_i32()?)
                    .ok_or("date out of range")?,
            )),
            6 => out.put(Value::Time(
                chrono::NaiveTime::from_num_seconds_from_midnight_opt(self.varint_u32()?, 0)
                    .ok_or("time out of range")?,
            )),
            7 => out.put(Value::Timestamp(
                DateTime::from_timestamp(self.zigzag_i64()?, 0)
                    .ok_or("timestamp out of range")?
                    .naive_utc(),
            )),
            _ => return Err("unknown value kind"),
        })
    }
}

/// Where [`Cursor::value_with`] puts a decoded value.
trait PutValue {
    type Out;
    fn put(self, value: Value) -> Self::Out;
    fn put_str(self, text: &str) -> Self::Out;
}

/// Hands the value back.
struct Owned;

impl PutValue for Owned {
    type Out = Value;

    #[inline(always)]
    fn put(self, value: Value) -> Value {
        value
    }

    #[inline(always)]
    fn put_str(self, text: &str) -> Value {
        Value::String(text.into())
    }
}

/// Writes the value into an uninitialised slot.
impl PutValue for &mut MaybeUninit<Value> {
    type Out = ();

    #[inline(always)]
    fn put(self, value: Value) {
        self.write(value);
    }

    /// An empty string written into the slot (a constant), then the text appended there: a
    /// `CompactString` built from the text is assembled on the stack by a variable-length copy
    /// and read back whole, two store-forwarding stalls per string (half of the decoder's
    /// samples after values were written in place).
    #[inline(always)]
    fn put_str(self, text: &str) {
        if let Value::String(s) = self.write(Value::String(CompactString::default())) {
            s.push_str(text);
        }
    }
}

/// Decodes one postcard `(RowId, Vec<Value>)` from the front of `bytes`; returns it and the
/// bytes after it.
#[cfg(test)]
fn decode_row(bytes: &[u8]) -> DecodeResult<(DecodedRow, &[u8])> {
    let mut values = Vec::new();
    let (id, rest) = decode_row_into(bytes, &mut values)?;
    Ok(((id, values), rest))
}

/// Decodes one row, appending its values to `values` (a buffer reused across rows, so the
/// reader allocates nothing per row here); returns the row id and the bytes after the row.
pub(crate) fn decode_row_into<'a>(
    bytes: &'a [u8],
    values: &mut Vec<Value>,
) -> DecodeResult<(RowId, &'a [u8])> {
    let mut c = Cursor { bytes };
    let id = c.varint_u64()?;
    let n = c.len_prefix()?;
    values.reserve(n);
    for _ in 0..n {
        values.push(c.value()?);
    }
    Ok((id, c.bytes))
}

/// Decodes one row straight into its shared form (one allocation, exactly sized, and no copy
/// out of a scratch buffer); returns the row id, the row and the bytes after the row.
#[allow(unsafe_code)]
pub(crate) fn decode_row_shared(bytes: &[u8]) -> DecodeResult<(RowId, Row, &[u8])> {
    let mut c = Cursor { bytes };
    let id = c.varint_u64()?;
    let n = c.len_prefix()?;
    let mut row = triomphe::UniqueArc::<[MaybeUninit<Value>]>::new_uninit_slice(n);
    for i in 0..n {
        // `i < n`, the slice's length.
        if let Err(reason) = c.value_with(&mut row[i]) {
            for slot in &mut row[..i] {
                // SAFETY: slots `..i` were written by the iterations before this one, and
                // each is dropped once here; the uninitialised slice then only frees.
                unsafe { slot.assume_init_drop() };
            }
            return Err(reason);
        }
    }
    // SAFETY: the loop wrote every one of the `n` slots (an error returns before this).
    let row = unsafe { triomphe::UniqueArc::assume_init_slice(row) };
    Ok((id, row.shareable(), c.bytes))
}

/// Copies a slice of exactly `N` bytes into an array for `from_le_bytes`. Callers slice with
/// constant offsets inside fixed-size buffers; a length mismatch (a bug, not bad data) yields
/// zeros rather than a panic.
pub(crate) fn le<const N: usize>(bytes: &[u8]) -> [u8; N] {
    bytes.try_into().unwrap_or([0; N])
}

/// Decodes a postcard `Vec<Mutation>` (the payload of a log record's batch): the result of
/// `postcard::from_bytes::<Vec<Mutation>>(bytes)`, and like it ignoring bytes after the
/// batch. Inserts, updates and deletes — what a log is made of — are decoded by hand, each row
/// straight into its shared allocation; table creation and drops go through postcard.
///
/// Errors are postcard's kinds (`DeserializeUnexpectedEnd` for a cut payload, and so on);
/// which one a damaged payload gets may differ from postcard's own, whether it fails does not.
pub fn decode_mutations(bytes: &[u8]) -> postcard::Result<Vec<Mutation>> {
    let mut c = Cursor { bytes };
    let n = c.len_prefix().map_err(to_postcard)?;
    let mut batch = Vec::with_capacity(n);
    for _ in 0..n {
        batch.push(c.mutation()?);
    }
    Ok(batch)
}

/// The postcard error kind closest to a decoding failure's reason.
fn to_postcard(reason: &'static str) -> postcard::Error {
    match reason {
        "the block ends inside a row" => postcard::Error::DeserializeUnexpectedEnd,
        "bad varint" => postcard::Error::DeserializeBadVarint,
        "string not UTF-8" => postcard::Error::DeserializeBadUtf8,
        "bad bool" => postcard::Error::DeserializeBadBool,
        "unknown value kind" | "unknown mutation kind" => postcard::Error::DeserializeBadEnum,
        _ => postcard::Error::DeserializeBadEncoding,
    }
}

impl Cursor<'_> {
    /// A sequence's length prefix, checked against the bytes left (every element takes at
    /// least one), which bounds what it makes us reserve.
    fn len_prefix(&mut self) -> DecodeResult<usize> {
        let n = usize::try_from(self.varint_u64()?).map_err(|_| "too many values")?;
        if n > self.bytes.len() {
            return Err("the block ends inside a row");
        }
        Ok(n)
    }

    fn string(&mut self) -> DecodeResult<String> {
        self.str().map(str::to_owned)
    }

    fn rows(&mut self) -> DecodeResult<Vec<(RowId, Row)>> {
        let n = self.len_prefix()?;
        let mut rows = Vec::with_capacity(n);
        for _ in 0..n {
            let (id, row, rest) = decode_row_shared(self.bytes)?;
            self.bytes = rest;
            rows.push((id, row));
        }
        Ok(rows)
    }

    /// One `Mutation`: its variant index (declaration order), then its fields.
    fn mutation(&mut self) -> postcard::Result<Mutation> {
        let start = self.bytes;
        Ok(match self.varint_u32().map_err(to_postcard)? {
            // Insert
            2 => Mutation::Insert {
                table: self.string().map_err(to_postcard)?,
                rows: self.rows().map_err(to_postcard)?,
            },
            // Update
            3 => Mutation::Update {
                table: self.string().map_err(to_postcard)?,
                rows: self.rows().map_err(to_postcard)?,
            },
            // Delete
            4 => {
                let table = self.string().map_err(to_postcard)?;
                let n = self.len_prefix().map_err(to_postcard)?;
                let mut row_ids = Vec::with_capacity(n);
                for _ in 0..n {
                    row_ids.push(self.varint_u64().map_err(to_postcard)?);
                }
                Mutation::Delete { table, row_ids }
            }
            // CreateTable, DropTable (and anything else, which postcard refuses): rare, so
            // postcard reads them, from the variant index on.
            _ => {
                let (mutation, rest) = postcard::take_from_bytes::<Mutation>(start)?;
                self.bytes = rest;
                mutation
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, NaiveTime};
    use proptest::prelude::*;

    fn any_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::Int),
            any::<f64>().prop_map(Value::Float),
            any::<String>().prop_map(Value::from),
            any::<bool>().prop_map(Value::Bool),
            (-1_000_000i32..4_000_000).prop_filter_map("date", |d| {
                NaiveDate::from_num_days_from_ce_opt(d).map(Value::Date)
            }),
            (0u32..86_400).prop_filter_map("time", |s| {
                NaiveTime::from_num_seconds_from_midnight_opt(s, 0).map(Value::Time)
            }),
            (-70_000_000_000i64..250_000_000_000).prop_filter_map("timestamp", |s| {
                DateTime::from_timestamp(s, 0).map(|t| Value::Timestamp(t.naive_utc()))
            }),
        ]
    }

    fn postcard_row(bytes: &[u8]) -> Option<(DecodedRow, &[u8])> {
        postcard::take_from_bytes::<DecodedRow>(bytes).ok()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn the_row_decoder_reads_what_postcard_writes(
            id in any::<u64>(),
            values in proptest::collection::vec(any_value(), 0..10),
            tail in proptest::collection::vec(any::<u8>(), 0..4),
        ) {
            let mut bytes = postcard::to_stdvec(&(id, &values)).expect("encode");
            bytes.extend_from_slice(&tail);
            let decoded = decode_row(&bytes);
            prop_assert_eq!(decoded.ok(), Some(((id, values), &tail[..])));
        }

        #[test]
        fn the_row_encoder_writes_what_postcard_writes(
            id in any::<u64>(),
            values in proptest::collection::vec(any_value(), 0..10),
        ) {
            let mut ours = vec![0xAA];
            encode_row(id, &values, &mut ours);
            let theirs = postcard::to_stdvec(&(id, &values)).expect("encode");
            prop_assert_eq!(&ours[1..], &theirs[..]);
        }

        #[test]
        fn the_row_decoder_agrees_with_postcard_on_any_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..48),
        ) {
            prop_assert_eq!(decode_row(&bytes).ok(), postcard_row(&bytes));
        }

        #[test]
        fn decoding_into_a_shared_row_gives_what_the_scratch_decoder_gives(
            values in proptest::collection::vec(any_value(), 0..8),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
            cut in any::<prop::sample::Index>(),
        ) {
            // Damaged and cut rows included: a row that fails after some of its values were
            // decoded must drop those (heap strings among them) and report the same error.
            let mut bytes = postcard::to_stdvec(&(9u64, &values)).expect("encode");
            for (i, b) in edits {
                let i = i.index(bytes.len());
                bytes[i] = b;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            let shared = decode_row_shared(&bytes).map(|(id, row, rest)| ((id, row.to_vec()), rest));
            prop_assert_eq!(shared, decode_row(&bytes));
        }

        #[test]
        fn the_row_decoder_agrees_with_postcard_on_damaged_rows(
            values in proptest::collection::vec(any_value(), 0..6),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut bytes = postcard::to_stdvec(&(7u64, &values)).expect("encode");
            for (i, b) in edits {
                let i = i.index(bytes.len());
                bytes[i] = b;
            }
            prop_assert_eq!(decode_row(&bytes).ok(), postcard_row(&bytes));
        }
    }

    /// The one `unsafe` of the decoder, in a test small enough for Miri
    /// (`cargo +nightly miri test -p phantom-storage --lib shared_row_decoding`): a row that
    /// decodes, and the same row failing after each of its values, heap strings included.
    #[test]
    fn shared_row_decoding_frees_what_it_decoded_when_a_later_value_fails() {
        let long = "a string too long to be stored inline".to_owned();
        let values = vec![Value::from(long.clone()), Value::Int(-3), Value::from(long)];
        let bytes = postcard::to_stdvec(&(5u64, &values)).expect("encode");
        let (id, row, rest) = decode_row_shared(&bytes).expect("decodes");
        assert_eq!((id, &row[..], rest), (5, &values[..], &[][..]));
        for cut in 0..bytes.len() {
            assert_eq!(
                decode_row_shared(&bytes[..cut]).err(),
                Some("the block ends inside a row"),
                "cut at {cut}"
            );
        }
    }

    fn any_mutation() -> impl Strategy<Value = Mutation> {
        let table = "[a-z_]{0,8}";
        let rows = || {
            proptest::collection::vec(
                (any::<u64>(), proptest::collection::vec(any_value(), 0..5)),
                0..4,
            )
            .prop_map(|rows| {
                rows.into_iter()
                    .map(|(id, values)| (id, Row::from(values)))
                    .collect::<Vec<_>>()
            })
        };
        prop_oneof![
            (table, rows()).prop_map(|(table, rows)| Mutation::Insert {
                table: table.to_owned(),
                rows
            }),
            (table, rows()).prop_map(|(table, rows)| Mutation::Update {
                table: table.to_owned(),
                rows
            }),
            (table, proptest::collection::vec(any::<u64>(), 0..6)).prop_map(|(table, row_ids)| {
                Mutation::Delete {
                    table: table.to_owned(),
                    row_ids,
                }
            }),
            table.prop_map(|table| Mutation::DropTable {
                table: table.to_owned()
            }),
            Just(Mutation::CreateTable {
                table: "t".into(),
                schema: crate::schema::Schema::new(
                    "t",
                    vec![
                        crate::schema::Column::new("id", crate::types::ColumnType::Int)
                            .primary_key(),
                        crate::schema::Column::new("name", crate::types::ColumnType::String),
                    ],
                )
                .expect("schema"),
            }),
        ]
    }

    fn postcard_batch(bytes: &[u8]) -> Option<Vec<Mutation>> {
        postcard::from_bytes::<Vec<Mutation>>(bytes).ok()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn the_batch_decoder_reads_what_postcard_writes(
            batch in proptest::collection::vec(any_mutation(), 0..5),
            tail in proptest::collection::vec(any::<u8>(), 0..3),
        ) {
            let mut bytes = postcard::to_stdvec(&batch).expect("encode");
            bytes.extend_from_slice(&tail);
            prop_assert_eq!(decode_mutations(&bytes).ok(), Some(batch));
        }

        #[test]
        fn the_batch_decoder_agrees_with_postcard_on_damaged_and_cut_batches(
            batch in proptest::collection::vec(any_mutation(), 1..4),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = postcard::to_stdvec(&batch).expect("encode");
            for (i, b) in edits {
                let i = i.index(bytes.len());
                bytes[i] = b;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            prop_assert_eq!(decode_mutations(&bytes).ok(), postcard_batch(&bytes));
        }

        #[test]
        fn the_batch_decoder_agrees_with_postcard_on_any_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            prop_assert_eq!(decode_mutations(&bytes).ok(), postcard_batch(&bytes));
        }
    }

    #[test]
    fn varints_follow_postcard_limits() {
        // u64::MAX takes ten bytes, the last one 0x01; a larger last byte overflows.
        let max = postcard::to_stdvec(&(u64::MAX, Vec::<Value>::new())).expect("encode");
        assert!(decode_row(&max).is_ok());
        let mut over = max.clone();
        over[9] = 0x02;
        assert_eq!(decode_row(&over).err(), Some("bad varint"));
        assert!(postcard_row(&over).is_none());
    }
}
