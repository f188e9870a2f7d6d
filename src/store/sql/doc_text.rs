//! A document column read as its text, without checking that the text is JSON; a document
//! bound for a `json` column (`DocJson`); and JSON text bound for a `jsonb` one (`JsonbText`).
//!
//! Everything that uses a stored document's text parses it first (the rendering reads its
//! members, a write parses it into a map), and either fails on text that is not JSON. A
//! check at the read as well (sqlx's `Json<Box<RawValue>>`) was a second full parse of every
//! document read: about a twentieth of the server's CPU on a page of users.

use std::borrow::Cow;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueFormat, PgValueRef};
use sqlx::sqlite::{SqliteArgumentValue, SqliteTypeInfo, SqliteValueRef};
use sqlx::types::Json;
use sqlx::{Decode, Encode, Postgres, Sqlite, Type, ValueRef};

use crate::store::Doc;

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

/// A document bound for a `json` column (Postgres's `users.doc`, migration 0019): its text as
/// serde_json writes it, which Postgres checks and stores as it is. Bound as `jsonb` (sqlx's
/// `Json`), every write had it parsed into `jsonb` and turned back into text for the column.
/// Text on SQLite, as `Json` binds it.
pub struct DocJson<'a>(pub &'a Doc);

/// Postgres's `json` type (`pg_type.oid`, fixed for built-in types).
const JSON_OID: Oid = Oid(114);

impl Type<Postgres> for DocJson<'_> {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(JSON_OID)
    }
}

impl Encode<'_, Postgres> for DocJson<'_> {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        // `json`'s binary form is its text.
        serde_json::to_writer(&mut **buf, self.0)?;
        Ok(IsNull::No)
    }
}

impl Type<Sqlite> for DocJson<'_> {
    fn type_info() -> SqliteTypeInfo {
        <Json<&Doc> as Type<Sqlite>>::type_info()
    }
}

impl<'q> Encode<'q, Sqlite> for DocJson<'_> {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        <Json<&Doc> as Encode<'q, Sqlite>>::encode_by_ref(&Json(self.0), buf)
    }
}

/// JSON text already written (a document's folded copy, `fold::FoldedDoc`) bound for a
/// `jsonb` column as it is: Postgres parses it into `jsonb` (and refuses text that is not
/// JSON); text on SQLite, as `Json` binds it.
pub struct JsonbText<'a>(pub &'a str);

impl Type<Postgres> for JsonbText<'_> {
    fn type_info() -> PgTypeInfo {
        <AsJson as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for JsonbText<'_> {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        // `jsonb`'s binary form: the format version (1), then the text.
        buf.push(1);
        buf.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }
}

impl Type<Sqlite> for JsonbText<'_> {
    fn type_info() -> SqliteTypeInfo {
        <Json<&Doc> as Type<Sqlite>>::type_info()
    }
}

impl<'q> Encode<'q, Sqlite> for JsonbText<'q> {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        buf.push(SqliteArgumentValue::Text(Cow::Borrowed(self.0)));
        Ok(IsNull::No)
    }
}
