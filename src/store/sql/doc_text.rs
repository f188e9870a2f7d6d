//! A document column read as its text, without checking that the text is JSON.
//!
//! Everything that uses a stored document's text parses it first (the rendering reads its
//! members, a write parses it into a map), and either fails on text that is not JSON. A
//! check at the read as well (sqlx's `Json<Box<RawValue>>`) was a second full parse of every
//! document read: about a twentieth of the server's CPU on a page of users.

use sqlx::error::BoxDynError;
use sqlx::postgres::{PgTypeInfo, PgValueFormat, PgValueRef};
use sqlx::sqlite::{SqliteTypeInfo, SqliteValueRef};
use sqlx::types::Json;
use sqlx::{Decode, Postgres, Sqlite, Type, ValueRef};

/// A JSON document column's text as the database returned it.
pub struct DocText(pub Box<str>);

/// The types a JSON column is read as: sqlx's own for JSON.
type AsJson = Json<serde_json::Value>;

impl Type<Postgres> for DocText {
    fn type_info() -> PgTypeInfo {
        <AsJson as Type<Postgres>>::type_info()
    }
    fn compatible(ty: &PgTypeInfo) -> bool {
        <AsJson as Type<Postgres>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Postgres> for DocText {
    fn decode(value: PgValueRef<'r>) -> Result<DocText, BoxDynError> {
        let binary_jsonb = value.format() == PgValueFormat::Binary
            && *value.type_info() == <AsJson as Type<Postgres>>::type_info();
        let bytes = value.as_bytes()?;
        // `jsonb`'s binary form is a version byte (1) before the text.
        let text = match bytes {
            [1, text @ ..] if binary_jsonb => text,
            [version, ..] if binary_jsonb => {
                return Err(format!("unsupported jsonb format version {version}").into());
            }
            text => text,
        };
        Ok(DocText(std::str::from_utf8(text)?.into()))
    }
}

impl Type<Sqlite> for DocText {
    fn type_info() -> SqliteTypeInfo {
        <AsJson as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <AsJson as Type<Sqlite>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Sqlite> for DocText {
    fn decode(value: SqliteValueRef<'r>) -> Result<DocText, BoxDynError> {
        Ok(DocText(<&str as Decode<'r, Sqlite>>::decode(value)?.into()))
    }
}
