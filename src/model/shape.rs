//! Reads a struct's field names from its serde `Deserialize` impl, so the attribute names a
//! kind's descriptor mentions can be checked against the real attribute shape (a misspelt
//! "forces replacement" attribute fails a test instead of silently never forcing).

use serde::de::{self, Deserialize, Visitor};
use std::fmt;

/// The serialized field names of `T` (a struct deriving `Deserialize`), renames applied.
/// Empty for anything that is not a plain struct.
pub fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    match T::deserialize(Probe) {
        Err(Found::Fields(fields)) => fields,
        _ => &[],
    }
}

/// A deserializer that answers only one question: what fields a struct asks for.
struct Probe;

#[derive(Debug)]
enum Found {
    Fields(&'static [&'static str]),
    NotAStruct,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Fields(fields) => write!(f, "fields {fields:?}"),
            Found::NotAStruct => f.write_str("not a struct"),
        }
    }
}

impl std::error::Error for Found {}

impl de::Error for Found {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Found::NotAStruct
    }
}

impl<'de> de::Deserializer<'de> for Probe {
    type Error = Found;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Found> {
        Err(Found::NotAStruct)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Found> {
        Err(Found::Fields(fields))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Sample {
        a: i32,
        #[serde(rename = "bee")]
        b: String,
        #[serde(default)]
        c: Option<u8>,
    }

    #[test]
    fn reads_field_names_with_renames() {
        assert_eq!(fields_of::<Sample>(), &["a", "bee", "c"]);
        assert!(fields_of::<String>().is_empty());
    }
}
