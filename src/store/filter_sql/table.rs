//! How each resource type is stored: the attributes mirrored in columns of their own, and
//! the JSON keys that lead from a document's root to any other attribute.

use crate::scim::filter::check::Resolved;
use crate::scim::path::AttrPath;
use crate::scim::schema::ResourceTypeDef;

/// A column that mirrors an attribute and is compared directly: one of the attributes
/// `scim::filter::check::indexed` names, with the operands it allows (a test keeps the two
/// lists equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Column {
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
    pub(super) columns: &'static [(&'static str, Column)],
    /// A statement giving the organization's row count (`$1`) without counting, when one is
    /// kept (migrations/*/0006_user_counts.sql).
    pub(super) kept_count: Option<&'static str>,
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

/// The column mirroring `path` on `table`, if any (core paths only, names case-insensitive).
pub(super) fn column_of(table: &Table, path: &AttrPath) -> Option<Column> {
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
pub(super) fn json_keys(target: &Resolved) -> Vec<String> {
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
