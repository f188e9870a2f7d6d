//! SCIM filters (RFC 7644 §3.4.2.2) and sort keys translated to SQL, once, for both backends.
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

use uuid::Uuid;

use crate::scim::filter::{CompValue, CompareOp, Filter};
use crate::scim::path::AttrPath;
use crate::scim::schema::{AttrType, AttributeDef, ResourceTypeDef};
use crate::scim::{ScimError, USER_ATTRIBUTE_SCHEMA};

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

/// A column that mirrors an attribute and is compared directly.
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

/// Translates a filter on `table` into a SQL boolean expression.
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

/// The SQL sort key for `sortBy` (RFC 7644 §3.4.2.3): single-valued attributes only.
pub fn sort_sql(b: &mut SqlBuilder, table: &Table, path: &AttrPath) -> Result<String, ScimError> {
    if let Some(column) = column_of(table, path) {
        return match column {
            Column::Id => Ok("id".into()),
            Column::Folded(c) | Column::Exact(c) | Column::Bool(c) | Column::Millis(c) => {
                Ok(c.into())
            }
            Column::Membership(..) => {
                Err(ScimError::invalid_value(format!("cannot sort by {path}")))
            }
        };
    }
    let target = resolve(table, path).map_err(|e| ScimError::invalid_value(e.detail))?;
    if target.multi_valued {
        return Err(ScimError::invalid_value(format!(
            "cannot sort by the multi-valued attribute {path}"
        )));
    }
    // `doc_folded` holds case-insensitive values folded already (and the others as they are).
    let keys = json_keys(path, &target);
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

/// What a path points at, as far as SQL cares.
#[derive(Debug, Clone)]
struct Target {
    ty: AttrType,
    case_exact: bool,
    multi_valued: bool,
    /// Canonical names: schema URN (extensions only), attribute, sub-attribute.
    schema: Option<String>,
    attr: String,
    sub: Option<String>,
    /// For a complex attribute compared without a sub-attribute: compare its `value`.
    implicit_value: bool,
}

fn resolve(table: &Table, path: &AttrPath) -> Result<Target, ScimError> {
    if let Some(schema) = &path.schema
        && schema.eq_ignore_ascii_case(USER_ATTRIBUTE_SCHEMA)
        && std::ptr::eq(table, &USERS)
    {
        // Organization-defined keys: strings compared exactly.
        let valid = !path.attr.is_empty()
            && path.sub_attr.is_none()
            && path
                .attr
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(ScimError::invalid_filter(format!(
                "unknown attribute {path}"
            )));
        }
        return Ok(Target {
            ty: AttrType::String,
            case_exact: true,
            multi_valued: false,
            schema: Some(USER_ATTRIBUTE_SCHEMA.into()),
            attr: path.attr.clone(),
            sub: None,
            implicit_value: false,
        });
    }
    let (def, sub) = table
        .resource
        .resolve(path.schema.as_deref(), &path.attr, path.sub_attr.as_deref())
        .ok_or_else(|| ScimError::invalid_filter(format!("unknown attribute {path}")))?;
    let schema = path
        .schema
        .as_deref()
        .and_then(|urn| table.resource.schema_by_urn(urn))
        .filter(|s| !std::ptr::eq(*s, table.resource.schema))
        .map(|s| s.id.to_string());
    let value_def = if sub.is_none() && def.ty == AttrType::Complex {
        def.sub_attribute("value")
    } else {
        None
    };
    let leaf: &AttributeDef = sub.or(value_def).unwrap_or(def);
    Ok(Target {
        ty: leaf.ty,
        case_exact: leaf.case_exact,
        multi_valued: def.multi_valued,
        schema,
        attr: def.name.to_string(),
        sub: sub.map(|s| s.name.to_string()),
        implicit_value: value_def.is_some(),
    })
}

/// JSON keys from the document root to the attribute (not into array elements).
fn json_keys(_path: &AttrPath, target: &Target) -> Vec<String> {
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
    let target = resolve(table, path)?;
    let keys = json_keys(path, &target);
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
    let target = resolve(table, path)?;
    let (def, _) = table
        .resource
        .resolve(target.schema.as_deref(), &target.attr, None)
        .ok_or_else(|| ScimError::invalid_filter(format!("unknown attribute {path}")))?;
    if def.ty != AttrType::Complex {
        return Err(ScimError::invalid_filter(format!(
            "{path} is not a complex attribute and cannot take a [filter]"
        )));
    }
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
        Filter::ValuePath { .. } => Err(ScimError::invalid_filter("value filters cannot nest")),
        Filter::Present(p) | Filter::Compare { path: p, .. } => {
            let sub = parent.sub_attribute(&p.attr).ok_or_else(|| {
                ScimError::invalid_filter(format!("unknown attribute {outer}.{}", p.attr))
            })?;
            let target = Target {
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
        _ => Err(ScimError::invalid_filter(format!(
            "{path} can be filtered only by value eq \"<id>\""
        ))),
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
    match column {
        Column::Id => {
            let id_text = match b.dialect {
                Dialect::Postgres => "id::text",
                Dialect::Sqlite => "id",
            };
            match (op, value) {
                (CompareOp::Eq | CompareOp::Ne, CompValue::Str(s)) => {
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
                _ => string_op(b, id_text, op, value, false, path),
            }
        }
        // The column holds the folded value: fold the operand only, so the index applies.
        Column::Folded(c) => {
            let folded = match value {
                CompValue::Str(s) => CompValue::Str(super::fold::fold(s)),
                other => other.clone(),
            };
            string_op(b, c, op, &folded, true, path)
        }
        Column::Exact(c) => string_op(b, c, op, value, true, path),
        Column::Bool(c) => {
            let CompValue::Bool(v) = value else {
                return Err(ScimError::invalid_filter(format!(
                    "{path} compares with true or false"
                )));
            };
            let bound = b.bind(SqlValue::Bool(*v));
            match op {
                CompareOp::Eq => Ok(format!("{c} = {bound}")),
                CompareOp::Ne => Ok(format!("{c} <> {bound}")),
                _ => Err(ScimError::invalid_filter(format!(
                    "{path} supports only eq and ne"
                ))),
            }
        }
        Column::Millis(c) => {
            let CompValue::Str(text) = value else {
                return Err(ScimError::invalid_filter(format!(
                    "{path} compares with a date-time"
                )));
            };
            let ms = chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|_| {
                    ScimError::invalid_filter(format!("{text:?} is not an RFC 3339 date-time"))
                })?
                .timestamp_millis();
            let bound = b.bind(SqlValue::Int(ms));
            let sql_op = ordering_op(op).ok_or_else(|| {
                ScimError::invalid_filter(format!("{path} supports eq, ne, gt, ge, lt and le"))
            })?;
            Ok(format!("{c} {sql_op} {bound}"))
        }
        Column::Membership(this, other) => {
            let (CompareOp::Eq, CompValue::Str(s)) = (op, value) else {
                return Err(ScimError::invalid_filter(format!(
                    "{path} can be filtered only with eq \"<id>\""
                )));
            };
            let Ok(id) = Uuid::parse_str(s.trim()) else {
                return Ok("false".into());
            };
            let bound = b.bind(SqlValue::Uuid(id));
            Ok(format!(
                "id in (select {this} from group_members where {other} = {bound})"
            ))
        }
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
    target: &Target,
    op: Option<(CompareOp, &CompValue)>,
    path: &AttrPath,
) -> Result<String, ScimError> {
    let Some((op, value)) = op else {
        return Ok(format!("({expr} is not null and {expr} <> '')"));
    };
    match (target.ty, value) {
        (_, CompValue::Null) => match op {
            CompareOp::Eq => Ok(format!("({expr} is null)")),
            CompareOp::Ne => Ok(format!("({expr} is not null)")),
            _ => Err(ScimError::invalid_filter(
                "null can only be compared with eq or ne",
            )),
        },
        (AttrType::Boolean, CompValue::Bool(v)) => {
            let bound = match b.dialect {
                Dialect::Postgres => b.bind(SqlValue::Text(v.to_string())),
                Dialect::Sqlite => b.bind(SqlValue::Int(i64::from(*v))),
            };
            match op {
                CompareOp::Eq => Ok(format!("{expr} = {bound}")),
                CompareOp::Ne => Ok(format!("coalesce({expr} <> {bound}, true)")),
                _ => Err(ScimError::invalid_filter(format!(
                    "{path} supports only eq and ne"
                ))),
            }
        }
        (AttrType::Integer | AttrType::Decimal, CompValue::Num(n)) => {
            let bound = match n.as_i64() {
                Some(i) => b.bind(SqlValue::Int(i)),
                None => b.bind(SqlValue::Real(n.as_f64().unwrap_or_default())),
            };
            let number = match b.dialect {
                Dialect::Postgres => format!("({expr})::numeric"),
                Dialect::Sqlite => expr.to_string(),
            };
            let sql_op = ordering_op(op).ok_or_else(|| {
                ScimError::invalid_filter(format!("{path} is a number: co, sw and ew do not apply"))
            })?;
            Ok(if op == CompareOp::Ne {
                format!("coalesce({number} {sql_op} {bound}, true)")
            } else {
                format!("{number} {sql_op} {bound}")
            })
        }
        (
            AttrType::String | AttrType::Reference | AttrType::DateTime | AttrType::Binary,
            CompValue::Str(_),
        ) => string_op(b, expr, op, value, target.case_exact, path),
        _ => Err(ScimError::invalid_filter(format!(
            "{path} cannot be compared with {value}"
        ))),
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
    value: &CompValue,
    case_exact: bool,
    path: &AttrPath,
) -> Result<String, ScimError> {
    let CompValue::Str(text) = value else {
        return Err(ScimError::invalid_filter(format!(
            "{path} compares with a string"
        )));
    };
    let expr = column;
    let text = if case_exact {
        text.clone()
    } else {
        super::fold::fold(text)
    };
    let v = b.bind(SqlValue::Text(text));
    let condition = match op {
        CompareOp::Eq => format!("{expr} = {v}"),
        CompareOp::Ne => return Ok(format!("coalesce({expr} <> {v}, true)")),
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
    };
    Ok(condition)
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
    use super::*;

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
    fn unknown_attributes_and_mistyped_values_are_invalid_filters() {
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
}
