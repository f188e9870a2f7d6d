//! SCIM filters (RFC 7644 §3.4.2.2) and sort keys translated to SQL, once, for both backends.
//!
//! Translation only: whether a filter fits the resource type is decided before, by
//! `scim::filter::check` (which also names the indexed attributes these columns hold). What
//! the check refuses is refused here too, with a plain error, never translated by guess.
//!
//! The output is a boolean SQL expression with `$n` placeholders plus the values to bind in
//! order; every value is bound, never spliced in. Attribute names are resolved through the
//! schema (an allow-list), so only known attributes reach SQL, and JSON keys are bound too.
//! Indexed columns (`id`, `userName`, `externalId`, `displayName`, `meta.*`, `active`) are
//! compared directly so their indexes apply; everything else is read from `doc_folded`, the
//! document with its caseExact=false strings folded in Rust (see `super::fold`), and compared
//! with an operand folded the same way: no SQL `lower()`, whose rules differ between SQLite
//! (ASCII only) and Postgres (locale). Multi-valued attributes match when any element does
//! (`exists` over the array).

use std::fmt;

use uuid::Uuid;

use crate::scim::ScimError;
use crate::scim::filter::check::{Resolved, resolve};
use crate::scim::filter::{CompValue, CompareOp, Filter};
use crate::scim::path::AttrPath;
use crate::scim::schema::{AttrType, AttributeDef, ResourceTypeDef};

/// The SQL dialect differences that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Sqlite,
}

/// A value to bind; each backend binds these in order.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Text(String),
    Int(i64),
    Real(f64),
    Bool(bool),
    Uuid(Uuid),
}

/// A column that mirrors an attribute and is compared directly: one of the attributes
/// `scim::filter::check::indexed` names, with the operands it allows (a test keeps the two
/// lists equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    /// The primary key.
    Id,
    /// Stores the attribute lower-cased (caseExact false, unique per org).
    Folded(&'static str),
    /// Stores the attribute as is (caseExact true).
    Exact(&'static str),
    Bool(&'static str),
    /// A timestamp in epoch milliseconds, compared with RFC 3339 values.
    Millis(&'static str),
    /// Membership, through `group_members`: (column of this resource, column of the other).
    Membership(&'static str, &'static str),
}

/// How one resource type is stored: its schema and the attributes mirrored in columns.
#[derive(Debug)]
pub struct Table {
    pub resource: &'static ResourceTypeDef,
    /// (attribute path as `attr` or `attr.sub`, lower-case) → column.
    columns: &'static [(&'static str, Column)],
    /// A statement giving the organization's row count (`$1`) without counting, when one is
    /// kept (migrations/*/0006_user_counts.sql).
    kept_count: Option<&'static str>,
}

/// `users`: see migrations/*/0001_init.sql.
pub static USERS: Table = Table {
    resource: &crate::scim::schema::USER_RESOURCE,
    kept_count: Some("select coalesce((select users from user_counts where org_id = $1), 0)"),
    columns: &[
        ("id", Column::Id),
        ("username", Column::Folded("user_name_folded")),
        ("externalid", Column::Exact("external_id")),
        ("active", Column::Bool("active")),
        ("meta.created", Column::Millis("created_at")),
        ("meta.lastmodified", Column::Millis("modified_at")),
        ("groups", Column::Membership("user_id", "group_id")),
        ("groups.value", Column::Membership("user_id", "group_id")),
    ],
};

/// `groups`: see migrations/*/0003_groups.sql.
pub static GROUPS: Table = Table {
    resource: &crate::scim::schema::GROUP_RESOURCE,
    kept_count: None,
    columns: &[
        ("id", Column::Id),
        ("displayname", Column::Folded("display_name_folded")),
        ("externalid", Column::Exact("external_id")),
        ("meta.created", Column::Millis("created_at")),
        ("meta.lastmodified", Column::Millis("modified_at")),
        ("members", Column::Membership("group_id", "user_id")),
        ("members.value", Column::Membership("group_id", "user_id")),
    ],
};

/// Where JSON is read from: the resource's document, or one element of an array inside an
/// `exists` sub-query.
#[derive(Debug, Clone, Copy)]
enum Base<'a> {
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
    fn json_text(&mut self, base: Base<'_>, keys: &[&str]) -> String {
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
    fn exists_element(
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

/// The error for a filter the check would have refused: translation never guesses. Callers
/// validate first (`scim::filter::check::validate`), so only an unchecked filter gets here.
fn untranslatable(path: &dyn fmt::Display) -> ScimError {
    ScimError::invalid_filter(format!(
        "the filter on {path} does not fit this resource type (it was not validated)"
    ))
}

/// Translates a filter on `table` into a SQL boolean expression. The filter must have passed
/// `scim::filter::check::validate` for `table.resource`; anything else is an error.
pub fn filter_sql(b: &mut SqlBuilder, table: &Table, filter: &Filter) -> Result<String, ScimError> {
    match filter {
        Filter::And(l, r) => Ok(format!(
            "({} and {})",
            filter_sql(b, table, l)?,
            filter_sql(b, table, r)?
        )),
        Filter::Or(l, r) => Ok(format!(
            "({} or {})",
            filter_sql(b, table, l)?,
            filter_sql(b, table, r)?
        )),
        // A leaf on an absent attribute is NULL, which `and`/`or` and WHERE treat as false;
        // `is not true` makes `not` treat it as false too (RFC 7644 §3.4.2.2).
        Filter::Not(inner) => Ok(format!("(({}) is not true)", filter_sql(b, table, inner)?)),
        Filter::Present(path) => attribute(b, table, path, None),
        Filter::Compare { path, op, value } => attribute(b, table, path, Some((*op, value))),
        Filter::ValuePath { path, filter } => value_path(b, table, path, filter),
    }
}

/// The SQL sort key for `sortBy` (RFC 7644 §3.4.2.3), which must have passed
/// `scim::filter::check::validate_sort`: a column, or the folded JSON text.
pub fn sort_sql(b: &mut SqlBuilder, table: &Table, path: &AttrPath) -> Result<String, ScimError> {
    let unsortable = || ScimError::invalid_value(format!("cannot sort by {path}"));
    if let Some(column) = column_of(table, path) {
        return match column {
            Column::Id => Ok("id".into()),
            Column::Folded(c) | Column::Exact(c) | Column::Bool(c) | Column::Millis(c) => {
                Ok(c.into())
            }
            Column::Membership(..) => Err(unsortable()),
        };
    }
    let target = resolve(table.resource, path).map_err(|_| unsortable())?;
    if target.multi_valued {
        // No single value to order by.
        return Err(unsortable());
    }
    // `doc_folded` holds case-insensitive values folded already (and the others as they are).
    let keys = json_keys(&target);
    Ok(b.json_text(
        Base::Doc,
        &keys.iter().map(String::as_str).collect::<Vec<_>>(),
    ))
}

fn column_of(table: &Table, path: &AttrPath) -> Option<Column> {
    if path.schema.is_some() {
        return None;
    }
    let name = match &path.sub_attr {
        Some(sub) => format!("{}.{}", path.attr, sub),
        None => path.attr.clone(),
    }
    .to_ascii_lowercase();
    table
        .columns
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| *c)
}

/// JSON keys from the document root to the attribute (not into array elements).
fn json_keys(target: &Resolved) -> Vec<String> {
    let mut keys: Vec<String> = target.schema.iter().cloned().collect();
    keys.push(target.attr.clone());
    if !target.multi_valued
        && let Some(sub) = target
            .sub
            .clone()
            .or(target.implicit_value.then(|| "value".to_string()))
    {
        keys.push(sub);
    }
    keys
}

/// A comparison (`op` Some) or a presence test (`op` None) on one attribute path.
fn attribute(
    b: &mut SqlBuilder,
    table: &Table,
    path: &AttrPath,
    op: Option<(CompareOp, &CompValue)>,
) -> Result<String, ScimError> {
    if let Some(column) = column_of(table, path) {
        return column_condition(b, column, op, path);
    }
    // How IdPs match users by email: answered from the `user_emails` index, not the documents.
    // (`$1` is the organization in every statement `list_sql` builds.)
    if std::ptr::eq(table, &USERS)
        && path.schema.is_none()
        && path.attr.eq_ignore_ascii_case("emails")
        && path
            .sub_attr
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("value"))
        && let Some((CompareOp::Eq, CompValue::Str(email))) = op
    {
        let bound = b.bind(SqlValue::Text(super::fold::fold(email)));
        return Ok(format!(
            "id in (select user_id from user_emails where org_id = $1 and value_folded = {bound})"
        ));
    }
    let target = resolve(table.resource, path)?;
    let keys = json_keys(&target);
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    if !target.multi_valued {
        let expr = b.json_text(Base::Doc, &keys);
        return leaf_condition(b, &expr, &target, op, path);
    }
    // Any element matches (RFC 7644 §3.4.2.2: multi-valued attributes).
    let element_keys: Vec<String> = target
        .sub
        .clone()
        .or(target.implicit_value.then(|| "value".to_string()))
        .into_iter()
        .collect();
    b.exists_element(&keys, |b, element| {
        let element_keys: Vec<&str> = element_keys.iter().map(String::as_str).collect();
        let expr = b.json_text(Base::Element(element), &element_keys);
        leaf_condition(b, &expr, &target, op, path)
    })
}

/// `emails[type eq "work" and value co "@x"]`: an element satisfying the inner filter exists.
fn value_path(
    b: &mut SqlBuilder,
    table: &Table,
    path: &AttrPath,
    inner: &Filter,
) -> Result<String, ScimError> {
    if let Some(Column::Membership(..)) = column_of(table, path) {
        // members[value eq "id"] / groups[value eq "id"]: the same as the dotted form.
        return membership_value_path(b, table, path, inner);
    }
    let target = resolve(table.resource, path)?;
    let def = match target.def {
        Some(def) if def.ty == AttrType::Complex => def,
        _ => return Err(untranslatable(path)),
    };
    let mut keys: Vec<String> = target.schema.iter().cloned().collect();
    keys.push(target.attr.clone());
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    if !def.multi_valued {
        // A single complex value: evaluate against the object itself.
        return element_filter(b, def, Base::Doc, &keys, inner, path);
    }
    b.exists_element(&keys, |b, element| {
        element_filter(b, def, Base::Element(element), &[], inner, path)
    })
}

/// The inner filter of a value path, with paths relative to `parent`.
fn element_filter(
    b: &mut SqlBuilder,
    parent: &'static AttributeDef,
    base: Base<'_>,
    prefix: &[&str],
    filter: &Filter,
    outer: &AttrPath,
) -> Result<String, ScimError> {
    let recurse =
        |b: &mut SqlBuilder, f: &Filter| element_filter(b, parent, base, prefix, f, outer);
    match filter {
        Filter::And(l, r) => Ok(format!("({} and {})", recurse(b, l)?, recurse(b, r)?)),
        Filter::Or(l, r) => Ok(format!("({} or {})", recurse(b, l)?, recurse(b, r)?)),
        Filter::Not(inner) => Ok(format!("(({}) is not true)", recurse(b, inner)?)),
        Filter::ValuePath { .. } => Err(untranslatable(outer)),
        Filter::Present(p) | Filter::Compare { path: p, .. } => {
            let sub = parent
                .sub_attribute(&p.attr)
                .ok_or_else(|| untranslatable(outer))?;
            let target = Resolved {
                def: Some(sub),
                ty: sub.ty,
                case_exact: sub.case_exact,
                multi_valued: false,
                schema: None,
                attr: sub.name.to_string(),
                sub: None,
                implicit_value: false,
            };
            let mut keys: Vec<&str> = prefix.to_vec();
            keys.push(sub.name);
            let expr = b.json_text(base, &keys);
            let op = match filter {
                Filter::Compare { op, value, .. } => Some((*op, value)),
                _ => None,
            };
            leaf_condition(b, &expr, &target, op, p)
        }
    }
}

fn membership_value_path(
    b: &mut SqlBuilder,
    table: &Table,
    path: &AttrPath,
    inner: &Filter,
) -> Result<String, ScimError> {
    match inner {
        Filter::Compare { path: p, op, value } if p.attr.eq_ignore_ascii_case("value") => {
            let dotted = AttrPath {
                schema: None,
                attr: path.attr.clone(),
                sub_attr: Some("value".into()),
            };
            attribute(b, table, &dotted, Some((*op, value)))
        }
        Filter::Or(l, r) => Ok(format!(
            "({} or {})",
            membership_value_path(b, table, path, l)?,
            membership_value_path(b, table, path, r)?
        )),
        _ => Err(untranslatable(path)),
    }
}

fn column_condition(
    b: &mut SqlBuilder,
    column: Column,
    op: Option<(CompareOp, &CompValue)>,
    path: &AttrPath,
) -> Result<String, ScimError> {
    let Some((op, value)) = op else {
        return Ok(match column {
            Column::Folded(c) | Column::Exact(c) => format!("({c} is not null and {c} <> '')"),
            Column::Membership(this, other) => {
                format!("(id in (select {this} from group_members where {other} is not null))")
            }
            _ => "true".into(),
        });
    };
    match (column, value) {
        (Column::Id, CompValue::Str(s)) if matches!(op, CompareOp::Eq | CompareOp::Ne) => {
            let matches = match Uuid::parse_str(s.trim()) {
                Ok(id) => format!("id = {}", b.bind(SqlValue::Uuid(id))),
                // A non-UUID never equals an id.
                Err(_) => "false".into(),
            };
            Ok(if op == CompareOp::Ne {
                format!("(not ({matches}))")
            } else {
                matches
            })
        }
        (Column::Id, CompValue::Str(s)) => {
            let id_text = match b.dialect {
                Dialect::Postgres => "id::text",
                Dialect::Sqlite => "id",
            };
            Ok(string_op(b, id_text, op, s, false))
        }
        // The column holds the folded value: fold the operand only, so the index applies.
        (Column::Folded(c), CompValue::Str(s)) => {
            Ok(string_op(b, c, op, &super::fold::fold(s), true))
        }
        (Column::Exact(c), CompValue::Str(s)) => Ok(string_op(b, c, op, s, true)),
        (Column::Bool(c), CompValue::Bool(v)) if matches!(op, CompareOp::Eq | CompareOp::Ne) => {
            let bound = b.bind(SqlValue::Bool(*v));
            let sql_op = if op == CompareOp::Eq { "=" } else { "<>" };
            Ok(format!("{c} {sql_op} {bound}"))
        }
        (Column::Millis(c), CompValue::Str(text)) => {
            let (Ok(instant), Some(sql_op)) =
                (chrono::DateTime::parse_from_rfc3339(text), ordering_op(op))
            else {
                return Err(untranslatable(path));
            };
            let bound = b.bind(SqlValue::Int(instant.timestamp_millis()));
            Ok(format!("{c} {sql_op} {bound}"))
        }
        (Column::Membership(this, other), CompValue::Str(s)) if op == CompareOp::Eq => {
            let Ok(id) = Uuid::parse_str(s.trim()) else {
                return Ok("false".into());
            };
            let bound = b.bind(SqlValue::Uuid(id));
            Ok(format!(
                "id in (select {this} from group_members where {other} = {bound})"
            ))
        }
        _ => Err(untranslatable(path)),
    }
}

fn ordering_op(op: CompareOp) -> Option<&'static str> {
    match op {
        CompareOp::Eq => Some("="),
        CompareOp::Ne => Some("<>"),
        CompareOp::Gt => Some(">"),
        CompareOp::Ge => Some(">="),
        CompareOp::Lt => Some("<"),
        CompareOp::Le => Some("<="),
        _ => None,
    }
}

/// A comparison on a JSON leaf expression (text), typed by the attribute's definition.
fn leaf_condition(
    b: &mut SqlBuilder,
    expr: &str,
    target: &Resolved,
    op: Option<(CompareOp, &CompValue)>,
    path: &AttrPath,
) -> Result<String, ScimError> {
    let Some((op, value)) = op else {
        return Ok(format!("({expr} is not null and {expr} <> '')"));
    };
    match (target.ty, value) {
        (_, CompValue::Null) if op == CompareOp::Eq => Ok(format!("({expr} is null)")),
        (_, CompValue::Null) if op == CompareOp::Ne => Ok(format!("({expr} is not null)")),
        (AttrType::Boolean, CompValue::Bool(v)) if matches!(op, CompareOp::Eq | CompareOp::Ne) => {
            let bound = match b.dialect {
                Dialect::Postgres => b.bind(SqlValue::Text(v.to_string())),
                Dialect::Sqlite => b.bind(SqlValue::Int(i64::from(*v))),
            };
            Ok(if op == CompareOp::Eq {
                format!("{expr} = {bound}")
            } else {
                format!("coalesce({expr} <> {bound}, true)")
            })
        }
        (AttrType::Integer | AttrType::Decimal, CompValue::Num(n)) => {
            let sql_op = ordering_op(op).ok_or_else(|| untranslatable(path))?;
            let bound = match n.as_i64() {
                Some(i) => b.bind(SqlValue::Int(i)),
                None => b.bind(SqlValue::Real(n.as_f64().unwrap_or_default())),
            };
            let number = match b.dialect {
                Dialect::Postgres => format!("({expr})::numeric"),
                Dialect::Sqlite => expr.to_string(),
            };
            Ok(if op == CompareOp::Ne {
                format!("coalesce({number} {sql_op} {bound}, true)")
            } else {
                format!("{number} {sql_op} {bound}")
            })
        }
        (
            AttrType::String | AttrType::Reference | AttrType::DateTime | AttrType::Binary,
            CompValue::Str(text),
        ) => Ok(string_op(b, expr, op, text, target.case_exact)),
        _ => Err(untranslatable(path)),
    }
}

/// String comparison, case-folded unless `case_exact` (RFC 7644 §3.4.2.2): `column` holds
/// folded text for a case-insensitive attribute (a `*_folded` column or `doc_folded`), so only
/// the operand is folded, in Rust. NULL when the attribute is absent (false, see
/// `Filter::Not`), except `ne`, which an absent value meets.
fn string_op(
    b: &mut SqlBuilder,
    column: &str,
    op: CompareOp,
    text: &str,
    case_exact: bool,
) -> String {
    let expr = column;
    let text = if case_exact {
        text.to_string()
    } else {
        super::fold::fold(text)
    };
    let v = b.bind(SqlValue::Text(text));
    match op {
        CompareOp::Eq => format!("{expr} = {v}"),
        CompareOp::Ne => format!("coalesce({expr} <> {v}, true)"),
        CompareOp::Co => match b.dialect {
            Dialect::Postgres => format!("strpos({expr}, {v}) > 0"),
            Dialect::Sqlite => format!("instr({expr}, {v}) > 0"),
        },
        CompareOp::Sw => format!("substr({expr}, 1, length({v})) = {v}"),
        CompareOp::Ew => match b.dialect {
            Dialect::Postgres => format!("right({expr}, length({v})) = {v}"),
            Dialect::Sqlite => format!("(length({v}) = 0 or substr({expr}, -length({v})) = {v})"),
        },
        CompareOp::Gt => format!("{expr} > {v}"),
        CompareOp::Ge => format!("{expr} >= {v}"),
        CompareOp::Lt => format!("{expr} < {v}"),
        CompareOp::Le => format!("{expr} <= {v}"),
    }
}

/// The statements for one page of a list: `select` (the page) and `count` (the total), both
/// with the organization id as `$1`; `count` uses the first `count_values` of `values`.
#[derive(Debug)]
pub struct ListSql {
    pub select: String,
    pub count: String,
    pub values: Vec<SqlValue>,
    pub count_values: usize,
}

/// Builds the list statements for `table` (RFC 7644 §3.4.2): filter, sort with a total order
/// (creation order breaks ties, so pages never skip or repeat), keyset cursor, limit/offset.
pub fn list_sql(
    dialect: Dialect,
    table: &Table,
    table_name: &str,
    columns: &str,
    query: &crate::store::ListQuery,
) -> Result<ListSql, ScimError> {
    let mut b = SqlBuilder::new(dialect, 2);
    let mut condition = "org_id = $1".to_string();
    if let Some(filter) = &query.filter {
        condition = format!("{condition} and {}", filter_sql(&mut b, table, filter)?);
    }
    let count = match (&query.filter, table.kept_count) {
        (None, Some(kept)) => kept.to_string(),
        _ => format!("select count(*) from {table_name} where {condition}"),
    };
    let count_values = b.values.len();
    let mut order = String::new();
    if let Some(sort) = &query.sort {
        let key = sort_sql(&mut b, table, &sort.path)?;
        let direction = if sort.descending { "desc" } else { "asc" };
        order = format!("{key} {direction} nulls last, ");
    }
    order.push_str("created_at, id");
    let mut page_condition = condition;
    if let Some(cursor) = &query.cursor {
        let created = b.bind(SqlValue::Int(cursor.created_at));
        let id = b.bind(SqlValue::Uuid(cursor.id));
        page_condition = format!("{page_condition} and (created_at, id) > ({created}, {id})");
    }
    // LIMIT and OFFSET are written into the statement (they are integers, never text): with
    // them as parameters Postgres's generic plan assumes a large limit, so it keeps planning
    // every execution afresh, and planning cost more than the lookup itself.
    let limit = query.count.max(0);
    let offset = if query.cursor.is_some() {
        0
    } else {
        (query.start_index - 1).max(0)
    };
    let select = if offset == 0 {
        // The first page (and every cursor page) reads its rows directly.
        format!(
            "select {columns} from {table_name} where {page_condition} \
             order by {order} limit {limit}"
        )
    } else {
        // Deferred join: the page's ids are found first (an index-only walk past `offset`
        // rows when the order is the default), and only those rows are read in full, so a
        // deep `startIndex` does not fetch every skipped document.
        format!(
            "select {columns} from {table_name} where id in (select id from {table_name} \
             where {page_condition} order by {order} limit {limit} offset {offset}) \
             order by {order}"
        )
    };
    Ok(ListSql {
        select,
        count,
        values: b.values,
        count_values,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::scim::filter::check::{Indexed, indexed, validate, validate_sort};
    use crate::scim::schema::{COMMON, GROUP_RESOURCE, USER_RESOURCE};

    fn sql(
        dialect: Dialect,
        table: &Table,
        filter: &str,
    ) -> Result<(String, Vec<SqlValue>), ScimError> {
        let filter: Filter = filter.parse()?;
        let mut b = SqlBuilder::new(dialect, 2);
        let text = filter_sql(&mut b, table, &filter)?;
        Ok((text, b.values))
    }

    #[test]
    fn indexed_attributes_compare_their_columns_with_bound_values() {
        let (text, values) = sql(Dialect::Postgres, &USERS, r#"userName eq "Ann@X.co""#).unwrap();
        assert_eq!(text, "user_name_folded = $2");
        assert_eq!(values, vec![SqlValue::Text("ann@x.co".into())]);
        let (text, _) = sql(Dialect::Sqlite, &USERS, r#"externalId eq "E1""#).unwrap();
        assert_eq!(text, "external_id = $2");
        let (text, _) = sql(Dialect::Postgres, &GROUPS, r#"displayName eq "Admins""#).unwrap();
        assert!(text.contains("display_name_folded"), "{text}");
    }

    #[test]
    fn values_are_never_spliced_into_sql() {
        for filter in [
            r#"userName eq "x' or 1=1 --""#,
            r#"displayName co "'; drop table users; --""#,
            r#"emails[value eq "a'b"]"#,
        ] {
            for dialect in [Dialect::Postgres, Dialect::Sqlite] {
                let (text, _) = sql(dialect, &USERS, filter).unwrap();
                assert!(
                    !text.contains("drop") && !text.contains("1=1") && !text.contains("a'b"),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn filters_the_check_refuses_are_refused_not_guessed() {
        let cases = [
            r#"nosuch eq "x""#,
            r#"name.nosuch eq "x""#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:nosuch eq "x""#,
            r#"active eq "yes""#,
            r#"meta.lastModified gt "yesterday""#,
            r#"emails[nosuch eq "x"]"#,
            r#"userName[value eq "x"]"#,
            r#"groups.value co "x""#,
        ];
        for filter in cases {
            assert!(validate(&filter.parse().unwrap(), &USER_RESOURCE).is_err());
            let err = sql(Dialect::Postgres, &USERS, filter).unwrap_err();
            assert_eq!(
                err.scim_type.map(|t| t.as_str()),
                Some("invalidFilter"),
                "{filter}"
            );
        }
    }

    #[test]
    fn multi_valued_attributes_match_any_element() {
        let (text, _) = sql(Dialect::Postgres, &USERS, r#"emails.value co "a@x.co""#).unwrap();
        assert!(
            text.starts_with("exists (select 1 from jsonb_array_elements"),
            "{text}"
        );
        let (text, values) = sql(Dialect::Postgres, &USERS, r#"emails.value eq "A@X.co""#).unwrap();
        assert!(text.contains("user_emails"), "{text}");
        assert_eq!(values, vec![SqlValue::Text("a@x.co".into())]);
        let (text, _) = sql(
            Dialect::Sqlite,
            &USERS,
            r#"emails[type eq "work" and value co "@x"]"#,
        )
        .unwrap();
        assert!(
            text.starts_with("exists (select 1 from json_each(doc_folded, $2) as e1"),
            "{text}"
        );
    }

    #[test]
    fn sort_keys_use_columns_or_folded_json() {
        let mut b = SqlBuilder::new(Dialect::Postgres, 2);
        let path = AttrPath::parse("userName").unwrap();
        assert_eq!(sort_sql(&mut b, &USERS, &path).unwrap(), "user_name_folded");
        let path = AttrPath::parse("name.familyName").unwrap();
        let key = sort_sql(&mut b, &USERS, &path).unwrap();
        assert!(
            key.starts_with("jsonb_extract_path_text(doc_folded"),
            "{key}"
        );
        let path = AttrPath::parse("emails").unwrap();
        assert!(sort_sql(&mut b, &USERS, &path).is_err());
    }

    /// Every attribute path of `resource`: core, common and extension attributes with their
    /// sub-attributes, as filters and `sortBy` name them.
    fn every_path(resource: &ResourceTypeDef) -> Vec<AttrPath> {
        let mut paths = Vec::new();
        let schemas = std::iter::once((resource.schema, None))
            .chain(resource.extensions.iter().map(|(s, _)| (*s, Some(s.id))));
        for (schema, urn) in schemas {
            let attrs = schema.attributes.iter();
            let attrs: Vec<_> = if urn.is_none() {
                attrs.chain(COMMON.iter()).collect()
            } else {
                attrs.collect()
            };
            for def in attrs {
                let path = |sub: Option<&str>| AttrPath {
                    schema: urn.map(str::to_string),
                    attr: def.name.to_string(),
                    sub_attr: sub.map(str::to_string),
                };
                paths.push(path(None));
                paths.extend(def.sub_attributes.iter().map(|s| path(Some(s.name))));
            }
        }
        paths
    }

    #[test]
    fn the_columns_are_the_attributes_the_check_indexes() {
        for table in [&USERS, &GROUPS] {
            for path in every_path(table.resource) {
                let kind = column_of(table, &path).map(|column| match column {
                    Column::Id | Column::Folded(_) | Column::Exact(_) => Indexed::Text,
                    Column::Bool(_) => Indexed::Boolean,
                    Column::Millis(_) => Indexed::Instant,
                    Column::Membership(..) => Indexed::Membership,
                });
                assert_eq!(kind, indexed(table.resource, &path), "{path}");
            }
            // And no column names a path the schema does not have.
            for (name, _) in table.columns {
                let path = AttrPath::parse(name).unwrap();
                assert!(indexed(table.resource, &path).is_some(), "{name}");
            }
        }
    }

    #[test]
    fn every_sort_key_the_check_accepts_translates() {
        for table in [&USERS, &GROUPS] {
            for path in every_path(table.resource) {
                let mut b = SqlBuilder::new(Dialect::Sqlite, 2);
                assert_eq!(
                    validate_sort(&path, table.resource).is_ok(),
                    sort_sql(&mut b, table, &path).is_ok(),
                    "{path}"
                );
            }
        }
    }

    fn any_path() -> impl Strategy<Value = AttrPath> {
        let mut paths = every_path(&USER_RESOURCE);
        paths.extend(every_path(&GROUP_RESOURCE));
        for extra in [
            "nosuch",
            "name.nosuch",
            "id.x",
            "urn:omni:params:1.0:UserAttribute:good_blob",
            "urn:omni:params:1.0:UserAttribute:a.b",
            "urn:acme:x:1.0:widget",
        ] {
            paths.push(AttrPath::parse(extra).unwrap());
        }
        prop::sample::select(paths)
    }

    fn any_comparison() -> impl Strategy<Value = (CompareOp, CompValue)> {
        let op = prop::sample::select(vec![
            CompareOp::Eq,
            CompareOp::Ne,
            CompareOp::Co,
            CompareOp::Sw,
            CompareOp::Ew,
            CompareOp::Gt,
            CompareOp::Ge,
            CompareOp::Lt,
            CompareOp::Le,
        ]);
        let value = prop_oneof![
            prop::sample::select(vec![
                "x",
                "2024-01-02T03:04:05Z",
                "2819c223-7f76-453a-919d-413861904646",
                "yesterday",
            ])
            .prop_map(|s| CompValue::Str(s.into())),
            (-3i64..3).prop_map(|n| CompValue::Num(n.into())),
            any::<bool>().prop_map(CompValue::Bool),
            Just(CompValue::Null),
        ];
        (op, value)
    }

    /// Leaves on any path, or value filters whose inner paths are plain names; operators
    /// and values are combined freely, including pairs the parser would refuse.
    fn any_filter() -> impl Strategy<Value = Filter> {
        let leaf = |path: BoxedStrategy<AttrPath>| {
            prop_oneof![
                path.clone().prop_map(Filter::Present),
                (path, any_comparison()).prop_map(|(path, (op, value))| Filter::Compare {
                    path,
                    op,
                    value
                }),
            ]
        };
        let relative = prop::sample::select(vec!["value", "type", "primary", "display", "nosuch"])
            .prop_map(|attr| AttrPath {
                schema: None,
                attr: attr.into(),
                sub_attr: None,
            })
            .boxed();
        let inner = leaf(relative).prop_recursive(2, 6, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(l, r)| Filter::And(l.into(), r.into())),
                (inner.clone(), inner.clone()).prop_map(|(l, r)| Filter::Or(l.into(), r.into())),
                inner.prop_map(|f| Filter::Not(f.into())),
            ]
        });
        let value_path = (any_path(), inner).prop_map(|(path, filter)| Filter::ValuePath {
            path: AttrPath {
                sub_attr: None,
                ..path
            },
            filter: filter.into(),
        });
        prop_oneof![3 => leaf(any_path().boxed()), 1 => value_path].prop_recursive(
            3,
            12,
            2,
            |tree| {
                prop_oneof![
                    (tree.clone(), tree.clone()).prop_map(|(l, r)| Filter::And(l.into(), r.into())),
                    (tree.clone(), tree.clone()).prop_map(|(l, r)| Filter::Or(l.into(), r.into())),
                    tree.prop_map(|f| Filter::Not(f.into())),
                ]
            },
        )
    }

    proptest! {
        /// The rules live in the check: the store translates what it accepts and refuses
        /// the rest, so a checked filter never fails in the store.
        #[test]
        fn the_store_translates_exactly_the_filters_the_check_accepts(filter in any_filter()) {
            for table in [&USERS, &GROUPS] {
                for dialect in [Dialect::Postgres, Dialect::Sqlite] {
                    let translated = filter_sql(&mut SqlBuilder::new(dialect, 2), table, &filter);
                    prop_assert_eq!(
                        validate(&filter, table.resource).is_ok(),
                        translated.is_ok(),
                        "{} on {}", filter, table.resource.name
                    );
                }
            }
        }
    }
}
