//! Name validation for databases, tables and columns.
//!
//! Invariant: every name that reaches a file path or a file format has passed [`validate_name`].
//! The accepted alphabet, `[A-Za-z_][A-Za-z0-9_]{0,63}`, contains no path separator, no `.`,
//! no NUL and none of the CSV format's delimiters (`:` `,` `]` newline), so a valid name can
//! neither escape the data directory nor corrupt a file.

use crate::error::{Error, Result};

/// Longest accepted name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Checks a database, table or column name against `[A-Za-z_][A-Za-z0-9_]{0,63}`.
///
/// ```
/// use phantom_storage::validate_name;
/// assert!(validate_name("users").is_ok());
/// assert!(validate_name("../x").is_err());
/// ```
pub fn validate_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("name is empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("name is longer than 64 bytes")
    } else if name.contains('\0') {
        Some("name contains a NUL byte")
    } else if name.contains('/') || name.contains('\\') {
        Some("name contains a path separator")
    } else if name.contains('.') {
        Some("name contains '.'")
    } else if name.as_bytes()[0].is_ascii_digit() {
        Some("name starts with a digit")
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Some("name may contain only ASCII letters, digits and '_'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_identifiers() {
        for ok in ["a", "_", "users", "User_2", &"x".repeat(64)] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_names_that_could_escape_or_corrupt() {
        let long = "x".repeat(65);
        for bad in [
            "",
            "../x",
            "a/b",
            "a\\b",
            "a\0b",
            "a:b",
            "a,b",
            "a]b",
            "a\nb",
            "1a",
            "a.b",
            "é",
            long.as_str(),
        ] {
            let err = validate_name(bad).expect_err(bad);
            assert!(
                matches!(err, Error::InvalidName { ref name, .. } if name == bad),
                "{err}"
            );
        }
    }
}
