//! Filters (RFC 7644 §3.4.2.2) translated to a SQL boolean expression: indexed attributes
//! on their columns, the rest on `doc_folded`, every value bound.

use std::fmt;

use uuid::Uuid;

use super::builder::{Base, SqlBuilder};
use super::table::{Column, Table, USERS, column_of, json_keys};
use super::{Dialect, SqlValue};
use crate::scim::ScimError;
use crate::scim::filter::check::{Resolved, resolve};
use crate::scim::filter::{CompValue, CompareOp, Filter};
use crate::scim::path::AttrPath;
use crate::scim::schema::{AttrType, AttributeDef};
use crate::store::fold::fold;

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
        let bound = b.bind(SqlValue::Text(fold(email)));
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
            // Null where the interop profile renders no `active` (never in the reference's).
            Column::Bool(c) => format!("({c} is not null)"),
            Column::Membership(this, other) => {
                format!(
                    "(id in (select {this} from group_members \
                     where org_id = $1 and {other} is not null))"
                )
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
        (Column::Folded(c), CompValue::Str(s)) => Ok(string_op(b, c, op, &fold(s), true)),
        (Column::Exact(c), CompValue::Str(s)) => Ok(string_op(b, c, op, s, true)),
        (Column::Bool(c), CompValue::Bool(v)) if matches!(op, CompareOp::Eq | CompareOp::Ne) => {
            let bound = b.bind(SqlValue::Bool(*v));
            // An absent value is unequal to any, as for attributes kept in the document.
            Ok(if op == CompareOp::Eq {
                format!("{c} = {bound}")
            } else {
                format!("coalesce({c} <> {bound}, true)")
            })
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
                "id in (select {this} from group_members where org_id = $1 and {other} = {bound})"
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
        fold(text)
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
