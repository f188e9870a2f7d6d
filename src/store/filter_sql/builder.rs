//! Accumulates the SQL text of one statement and the values it binds, and reads JSON from a
//! document or an array element in each dialect.

use super::{Dialect, SqlValue};
use crate::scim::ScimError;

/// Where JSON is read from: the resource's document, or one element of an array inside an
/// `exists` sub-query.
#[derive(Debug, Clone, Copy)]
pub(super) enum Base<'a> {
    Doc,
    Element(&'a str),
}

/// Accumulates SQL text and bound values; placeholders continue from `first_param`.
#[derive(Debug)]
pub struct SqlBuilder {
    pub dialect: Dialect,
    pub values: Vec<SqlValue>,
    first_param: usize,
    aliases: usize,
}

impl SqlBuilder {
    pub fn new(dialect: Dialect, first_param: usize) -> SqlBuilder {
        SqlBuilder {
            dialect,
            values: Vec::new(),
            first_param,
            aliases: 0,
        }
    }

    /// Binds a value and returns its placeholder.
    pub fn bind(&mut self, value: SqlValue) -> String {
        self.values.push(value);
        format!("${}", self.first_param + self.values.len() - 1)
    }

    fn alias(&mut self) -> String {
        self.aliases += 1;
        format!("e{}", self.aliases)
    }

    /// The text value at `keys` under `base` (NULL when absent).
    pub(super) fn json_text(&mut self, base: Base<'_>, keys: &[&str]) -> String {
        match (self.dialect, base) {
            (Dialect::Postgres, Base::Doc) => {
                format!("jsonb_extract_path_text(doc_folded, {})", self.keys(keys))
            }
            (Dialect::Postgres, Base::Element(e)) if keys.is_empty() => format!("({e} #>> '{{}}')"),
            (Dialect::Postgres, Base::Element(e)) => {
                format!("jsonb_extract_path_text({e}, {})", self.keys(keys))
            }
            (Dialect::Sqlite, Base::Element(e)) if keys.is_empty() => format!("{e}.value"),
            (Dialect::Sqlite, Base::Doc) => {
                format!("json_extract(doc_folded, {})", self.sqlite_path(keys))
            }
            (Dialect::Sqlite, Base::Element(e)) => {
                format!("json_extract({e}.value, {})", self.sqlite_path(keys))
            }
        }
    }

    fn keys(&mut self, keys: &[&str]) -> String {
        keys.iter()
            .map(|k| format!("{}::text", self.bind(SqlValue::Text(k.to_string()))))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A JSON path such as `$."urn:…:User"."department"`; keys come from the schema or from
    /// validated user-attribute names, and are bound, not spliced.
    fn sqlite_path(&mut self, keys: &[&str]) -> String {
        let path: String = keys.iter().map(|k| format!(".\"{k}\"")).collect();
        self.bind(SqlValue::Text(format!("${path}")))
    }

    /// `exists` over the elements of the array at `keys`, with `condition` built for the
    /// element.
    pub(super) fn exists_element(
        &mut self,
        keys: &[&str],
        condition: impl FnOnce(&mut SqlBuilder, &str) -> Result<String, ScimError>,
    ) -> Result<String, ScimError> {
        let alias = self.alias();
        let source = match self.dialect {
            Dialect::Postgres => {
                let path = self.keys(keys);
                format!(
                    "jsonb_array_elements(case when jsonb_typeof(jsonb_extract_path(doc_folded, {path})) = 'array' \
                     then jsonb_extract_path(doc_folded, {path}) else '[]'::jsonb end) as {alias}"
                )
            }
            Dialect::Sqlite => {
                let path = self.sqlite_path(keys);
                format!("json_each(doc_folded, {path}) as {alias}")
            }
        };
        let element = match self.dialect {
            Dialect::Postgres => format!("{alias}.value"),
            Dialect::Sqlite => alias.clone(),
        };
        let inner = condition(self, &element)?;
        Ok(format!("exists (select 1 from {source} where {inner})"))
    }
}
