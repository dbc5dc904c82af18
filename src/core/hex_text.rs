//! Fixed-size values written as hex in JSON (addresses, hashes, signatures). A submitted batch
//! of transfers carries three of them per transfer, and reading them was most of the cost of
//! parsing a request: this decodes a whole field at once rather than a character at a time, and
//! reads it where the JSON parser holds it rather than from a copy.

use serde::de::{self, Visitor};
use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

/// The `N` bytes that `text` spells in exactly `2 * N` hex digits, upper or lower case; `None`
/// for anything else (another length, a `0x` prefix, whitespace, a non-hex character).
pub fn decode_exact<const N: usize>(text: &str) -> Option<[u8; N]> {
    faster_hex::hex_decode_array::<N>(text.as_bytes()).ok()
}

/// A serde visitor that reads a `T` from its text form through `FromStr`, from the string the
/// deserializer lends it: no `String` is allocated per field, and the error is `T`'s own.
pub struct FromText<T>(PhantomData<T>);

impl<T> Default for FromText<T> {
    fn default() -> Self {
        FromText(PhantomData)
    }
}

impl<T> Visitor<'_> for FromText<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a hex string")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
        text.parse().map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_twice_the_length_in_hex_digits_of_either_case_and_nothing_else() {
        assert_eq!(decode_exact::<2>("0aFf"), Some([0x0a, 0xff]));
        assert_eq!(decode_exact::<2>("0AfF"), Some([0x0a, 0xff]));
        for refused in ["0aff00", "0af", "", "0x0aff", " 0aff", "0af ", "0agf", "０a"] {
            assert_eq!(decode_exact::<2>(refused), None, "{refused:?}");
        }
        let long = "ab".repeat(64);
        assert_eq!(decode_exact::<64>(&long), Some([0xab; 64]));
        assert_eq!(decode_exact::<64>(&long[1..]), None);
    }

    #[test]
    fn a_field_is_read_through_its_own_parser_with_its_own_error() {
        #[derive(Debug, PartialEq)]
        struct Pair([u8; 2]);
        impl FromStr for Pair {
            type Err = &'static str;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                decode_exact(s).map(Pair).ok_or("expected 4 hex characters")
            }
        }
        let read = |json: &str| {
            let mut de = serde_json::Deserializer::from_str(json);
            de::Deserializer::deserialize_str(&mut de, FromText::<Pair>::default())
        };
        assert_eq!(read("\"0aff\"").unwrap(), Pair([0x0a, 0xff]));
        // An escaped string cannot be lent as it is: the parser unescapes it into a buffer first.
        assert_eq!(read("\"0a\\u0066f\"").unwrap(), Pair([0x0a, 0xff]));
        assert!(read("\"0afff\"").unwrap_err().to_string().contains("expected 4 hex characters"));
        assert!(read("12").unwrap_err().to_string().contains("a hex string"));
    }
}
