//! Translation tests: bound values, columns, JSON paths, and agreement with the check.

use proptest::prelude::*;

use super::table::{Column, column_of};
use super::*;
use crate::scim::ScimError;
use crate::scim::filter::check::{Indexed, indexed, validate, validate_sort};
use crate::scim::filter::{CompValue, CompareOp, Filter};
use crate::scim::path::AttrPath;
use crate::scim::schema::{COMMON, GROUP_RESOURCE, ResourceTypeDef, USER_RESOURCE};

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
    prop_oneof![3 => leaf(any_path().boxed()), 1 => value_path].prop_recursive(3, 12, 2, |tree| {
        prop_oneof![
            (tree.clone(), tree.clone()).prop_map(|(l, r)| Filter::And(l.into(), r.into())),
            (tree.clone(), tree.clone()).prop_map(|(l, r)| Filter::Or(l.into(), r.into())),
            tree.prop_map(|f| Filter::Not(f.into())),
        ]
    })
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

/// The first page of `filter` (no sortBy): the select statement.
fn first_page(table: &Table, filter: &str, sort: Option<&str>) -> String {
    let query = crate::store::ListQuery {
        filter: Some(filter.parse().unwrap()),
        sort: sort.map(|path| crate::store::Sort {
            path: AttrPath::parse(path).unwrap(),
            descending: false,
        }),
        start_index: 1,
        count: 100,
        cursor: None,
        byte_budget: None,
    };
    list_sql(Dialect::Postgres, table, "t", "*", &query)
        .unwrap()
        .select
}

#[test]
fn a_filter_pinning_a_unique_key_reads_its_row_without_order_or_limit() {
    for filter in [
        r#"userName eq "ann@x.co""#,
        r#"USERNAME eq "ann@x.co""#,
        r#"id eq "4f1c2b7e-0000-4000-8000-000000000001""#,
        r#"userName eq "ann@x.co" and active eq true"#,
        r#"active eq true and userName eq "ann@x.co""#,
    ] {
        let select = first_page(&USERS, filter, None);
        assert!(
            !select.contains("order by") && !select.contains("limit"),
            "{filter}: {select}"
        );
    }
    let select = first_page(&GROUPS, r#"displayName eq "Admins""#, None);
    assert!(!select.contains("order by"), "{select}");
    // More than one row can match: the page keeps its order and its limit.
    for filter in [
        r#"userName sw "ann""#,
        r#"userName ne "ann@x.co""#,
        r#"externalId eq "E1""#,
        r#"userName eq "ann@x.co" or userName eq "bob@x.co""#,
        r#"not (userName eq "ann@x.co")"#,
        r#"emails.value eq "ann@x.co""#,
    ] {
        let select = first_page(&USERS, filter, None);
        assert!(
            select.contains("order by created_at, id limit 100"),
            "{filter}: {select}"
        );
    }
    let select = first_page(&USERS, r#"userName eq "ann@x.co""#, Some("displayName"));
    assert!(select.contains("order by"), "{select}");
}
