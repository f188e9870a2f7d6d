//! Table-driven tests of the PATCH engine: RFC 7644 §3.5.2 semantics and the request
//! shapes Okta and Microsoft Entra ID really send.

use serde_json::json;

use super::values::{
    ADD_ADDED, BOOLEAN_COERCED, DOTTED_KEY, ID_IGNORED, MANAGER_WRAPPED, REPLACE_ADDED,
    SINGLE_WRAPPED, URN_KEY,
};
use super::*;
use crate::scim::schema::{GROUP_RESOURCE, USER_RESOURCE};
use crate::scim::{ENTERPRISE_USER_SCHEMA, OMNI_USER_EXTENSION_SCHEMA, ScimType};

const ENT: &str = ENTERPRISE_USER_SCHEMA;
const UA: &str = "urn:omni:params:1.0:UserAttribute";
const ENT_MANAGER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager";
const ENT_DEPARTMENT: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department";
const ENT_EMPLOYEE_NUMBER: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber";

fn object(value: Value) -> Object {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// A user as `normalize_resource` would store it.
fn user() -> Value {
    json!({
        "userName": "bjensen@example.com",
        "displayName": "Babs",
        "active": true,
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@home.org", "type": "home"}
        ],
        "phoneNumbers": [{"value": "555-1", "type": "mobile"}],
        "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza"}],
        ENT: {"department": "Tour Operations"},
        UA: {"good_blob": "x"}
    })
}

fn group() -> Value {
    json!({
        "displayName": "Ops",
        "members": [{"value": "u-1", "type": "User"}, {"value": "u-2", "type": "User"}]
    })
}

/// `base` after `f`, for writing expected documents as edits of a fixture.
fn edit(mut base: Value, f: impl FnOnce(&mut Value)) -> Value {
    f(&mut base);
    base
}

fn user_with(f: impl FnOnce(&mut Value)) -> Value {
    edit(user(), f)
}

fn group_with(f: impl FnOnce(&mut Value)) -> Value {
    edit(group(), f)
}

/// Removes a top-level attribute from an expected document.
fn del(doc: &mut Value, key: &str) {
    doc.as_object_mut().unwrap().remove(key);
}

fn with_manager() -> Value {
    user_with(|d| {
        d[ENT]["manager"] = json!({"value": "m-1", "$ref": "../Users/m-1"});
    })
}

#[test]
fn a_multi_valued_attribute_may_not_grow_past_the_cap_in_any_operation() {
    let limits = Limits {
        max_multi_values: 3,
        ..Limits::default()
    };
    let email = |i: usize| json!({"op": "add", "path": "emails", "value": [{"value": format!("e{i}@x.co")}]});
    let body = |n: usize| {
        object(
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": (0..n).map(email).collect::<Vec<_>>()}),
        )
    };
    let doc = object(json!({"userName": "a@b.co"}));
    let three = parse_request(&body(3)).unwrap();
    assert_eq!(
        apply(&USER_RESOURCE, &doc, &three, &limits).unwrap().doc["emails"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    // The fourth value fails at the operation that adds it, naming the cap.
    let many = parse_request(&body(1_000)).unwrap();
    let err = apply(&USER_RESOURCE, &doc, &many, &limits).unwrap_err();
    assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
    assert!(err.detail.starts_with("Operations[3]"), "{}", err.detail);
    assert!(err.detail.contains("max_multi_values"), "{}", err.detail);
}

fn run(rt: &ResourceTypeDef, doc: &Value, ops: Value) -> Result<PatchOutcome, ScimError> {
    let body = object(json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops}));
    let ops = parse_request(&body)?;
    apply(rt, &object(doc.clone()), &ops, &Limits::default())
}

enum Expect {
    /// The patched document (which must differ from the input: `changed` is true).
    Yields(Value),
    /// Success without any change (`changed` is false).
    Unchanged,
    /// The error type and a fragment of its detail.
    Fails(ScimType, &'static str),
}
use Expect::{Fails, Unchanged, Yields};

struct Case {
    name: &'static str,
    rt: &'static ResourceTypeDef,
    doc: Value,
    ops: Value,
    expect: Expect,
}

fn u(name: &'static str, ops: Value, expect: Expect) -> Case {
    Case {
        name,
        rt: &USER_RESOURCE,
        doc: user(),
        ops,
        expect,
    }
}

fn on(name: &'static str, doc: Value, ops: Value, expect: Expect) -> Case {
    Case {
        name,
        rt: &USER_RESOURCE,
        doc,
        ops,
        expect,
    }
}

fn g(name: &'static str, ops: Value, expect: Expect) -> Case {
    Case {
        name,
        rt: &GROUP_RESOURCE,
        doc: group(),
        ops,
        expect,
    }
}

fn check(cases: Vec<Case>) {
    for case in cases {
        let name = case.name;
        let result = run(case.rt, &case.doc, case.ops);
        match (result, case.expect) {
            (Ok(out), Yields(want)) => {
                assert_eq!(Value::Object(out.doc), want, "{name}");
                assert!(out.changed, "{name}: expected changed");
                assert_ne!(want, case.doc, "{name}: the table expects no change");
            }
            (Ok(out), Unchanged) => {
                assert_eq!(Value::Object(out.doc), case.doc, "{name}");
                assert!(!out.changed, "{name}: expected unchanged");
            }
            (Err(err), Fails(ty, fragment)) => {
                assert_eq!(err.scim_type, Some(ty), "{name}: {err}");
                assert_eq!(err.status, 400, "{name}");
                assert!(
                    err.detail.contains(fragment),
                    "{name}: detail {:?} lacks {fragment:?}",
                    err.detail
                );
            }
            (Ok(out), Fails(..)) => panic!("{name}: expected an error, got {:?}", out.doc),
            (Err(err), _) => panic!("{name}: unexpected error {err}"),
        }
    }
}

#[test]
fn single_valued_and_complex_attributes_follow_rfc_7644() {
    check(vec![
        u(
            "Okta deactivates with a path-less replace",
            json!([{"op": "replace", "value": {"active": false}}]),
            Yields(user_with(|d| d["active"] = json!(false))),
        ),
        u(
            "Entra deactivates with the string False",
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
            Yields(user_with(|d| d["active"] = json!(false))),
        ),
        u(
            "replacing a value with itself changes nothing",
            json!([{"op": "replace", "path": "active", "value": "True"}]),
            Unchanged,
        ),
        u(
            "Entra's path-less replace with dotted and URN-qualified keys",
            json!([{"op": "Replace", "value": {"name.givenName": "X", ENT_EMPLOYEE_NUMBER: "42"}}]),
            Yields(user_with(|d| {
                d["name"]["givenName"] = json!("X");
                d[ENT]["employeeNumber"] = json!("42");
            })),
        ),
        u(
            "a path is matched case-insensitively and stored canonically",
            json!([{"op": "replace", "path": "DISPLAYNAME", "value": "B"}]),
            Yields(user_with(|d| d["displayName"] = json!("B"))),
        ),
        u(
            "a core-URN-qualified path targets the core attribute",
            json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:displayName", "value": "B"}]),
            Yields(user_with(|d| d["displayName"] = json!("B"))),
        ),
        u(
            "add of a new simple attribute sets it",
            json!([{"op": "add", "path": "title", "value": "Tour Guide"}]),
            Yields(user_with(|d| d["title"] = json!("Tour Guide"))),
        ),
        u(
            "add of an existing simple attribute replaces it",
            json!([{"op": "add", "path": "displayName", "value": "Barb"}]),
            Yields(user_with(|d| d["displayName"] = json!("Barb"))),
        ),
        u(
            "replace with null unassigns",
            json!([{"op": "replace", "path": "displayName", "value": null}]),
            Yields(user_with(|d| {
                del(d, "displayName");
            })),
        ),
        u(
            "add with null unassigns too",
            json!([{"op": "add", "path": "displayName", "value": null}]),
            Yields(user_with(|d| {
                del(d, "displayName");
            })),
        ),
        u(
            "add of a sub-attribute sets it inside the complex value",
            json!([{"op": "add", "path": "name.middleName", "value": "J"}]),
            Yields(user_with(|d| d["name"]["middleName"] = json!("J"))),
        ),
        u(
            "add of a complex value merges its sub-attributes",
            json!([{"op": "add", "path": "name", "value": {"middleName": "J"}}]),
            Yields(user_with(|d| d["name"]["middleName"] = json!("J"))),
        ),
        u(
            "replace of a complex value leaves unspecified sub-attributes unchanged",
            json!([{"op": "replace", "path": "name", "value": {"GIVENNAME": "Babs", "familyName": null}}]),
            Yields(user_with(|d| d["name"] = json!({"givenName": "Babs"}))),
        ),
        u(
            "remove of a sub-attribute keeps the others",
            json!([{"op": "remove", "path": "name.givenName"}]),
            Yields(user_with(|d| d["name"] = json!({"familyName": "Jensen"}))),
        ),
        u(
            "a complex value emptied by removes is unassigned",
            json!([{"op": "remove", "path": "name.givenName"}, {"op": "remove", "path": "name.familyName"}]),
            Yields(user_with(|d| {
                del(d, "name");
            })),
        ),
        u(
            "remove of an absent attribute succeeds without change",
            json!([{"op": "remove", "path": "nickName"}]),
            Unchanged,
        ),
        u(
            "remove of an absent sub-attribute succeeds without change",
            json!([{"op": "remove", "path": "name.honorificPrefix"}]),
            Unchanged,
        ),
        u(
            "the password is set as given for the caller to hash",
            json!([{"op": "replace", "path": "password", "value": "t1meMa$heen"}]),
            Yields(user_with(|d| d["password"] = json!("t1meMa$heen"))),
        ),
        u(
            "externalId, a common attribute, can be added",
            json!([{"op": "add", "path": "externalId", "value": "701984"}]),
            Yields(user_with(|d| d["externalId"] = json!("701984"))),
        ),
        u(
            "schemas in a path-less value is ignored",
            json!([{"op": "replace", "value": {"schemas": ["x"], "nickName": "B"}}]),
            Yields(user_with(|d| d["nickName"] = json!("B"))),
        ),
        u(
            "operations apply in order",
            json!([
                {"op": "add", "path": "title", "value": "A"},
                {"op": "replace", "path": "title", "value": "B"},
                {"op": "remove", "path": "nickName"}
            ]),
            Yields(user_with(|d| d["title"] = json!("B"))),
        ),
        u(
            "op names are case-insensitive",
            json!([{"op": "ADD", "path": "title", "value": "A"}, {"op": "rEpLaCe", "path": "nickName", "value": "N"}]),
            Yields(user_with(|d| {
                d["title"] = json!("A");
                d["nickName"] = json!("N");
            })),
        ),
        u(
            "add then remove of the same attribute is no change overall",
            json!([{"op": "add", "path": "title", "value": "A"}, {"op": "remove", "path": "title"}]),
            Unchanged,
        ),
    ]);
}

#[test]
fn extension_attributes_are_addressed_by_urn() {
    check(vec![
        u(
            "Entra adds a manager as a bare id string",
            json!([{"op": "Add", "path": ENT_MANAGER, "value": "mgr-id"}]),
            Yields(user_with(|d| {
                d[ENT]["manager"] = json!({"value": "mgr-id"})
            })),
        ),
        u(
            "a manager object is accepted with its readOnly displayName dropped",
            json!([{"op": "add", "path": ENT_MANAGER, "value": {"value": "m-2", "displayName": "Boss"}}]),
            Yields(user_with(|d| d[ENT]["manager"] = json!({"value": "m-2"}))),
        ),
        on(
            "manager.value is replaced inside the manager",
            with_manager(),
            json!([{"op": "replace", "path": format!("{ENT_MANAGER}.value"), "value": "m-2"}]),
            Yields(user_with(|d| {
                d[ENT]["manager"] = json!({"value": "m-2", "$ref": "../Users/m-1"});
            })),
        ),
        on(
            "removing the manager keeps the rest of the extension",
            with_manager(),
            json!([{"op": "Remove", "path": ENT_MANAGER}]),
            Yields(user()),
        ),
        on(
            "removing the last extension attribute removes the extension",
            user_with(|d| d[ENT] = json!({"manager": {"value": "m-1"}})),
            json!([{"op": "remove", "path": ENT_MANAGER}]),
            Yields(user_with(|d| {
                del(d, ENT);
            })),
        ),
        u(
            "the readOnly lastLogin cannot be removed either",
            json!([{"op": "remove", "path": "urn:omni:params:scim:schemas:extension:user:2.0:lastLogin"}]),
            Fails(ScimType::Mutability, "lastLogin"),
        ),
        on(
            "removing from an absent extension succeeds without change",
            user_with(|d| {
                del(d, ENT);
            }),
            json!([{"op": "remove", "path": ENT_MANAGER}]),
            Unchanged,
        ),
        u(
            "an extension path in another case is canonicalised",
            json!([{"op": "replace", "path": "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:Department", "value": "Sales"}]),
            Yields(user_with(|d| d[ENT]["department"] = json!("Sales"))),
        ),
        on(
            "add of an extension attribute creates the extension",
            user_with(|d| {
                del(d, ENT);
            }),
            json!([{"op": "add", "path": ENT_DEPARTMENT, "value": "Sales"}]),
            Yields(user_with(|d| d[ENT] = json!({"department": "Sales"}))),
        ),
        u(
            "a bare extension URN path merges attribute by attribute",
            json!([{"op": "replace", "path": ENT, "value": {"costCenter": "4130", "schemas": [ENT]}}]),
            Yields(user_with(|d| d[ENT]["costCenter"] = json!("4130"))),
        ),
        u(
            "a bare extension URN path can be removed",
            json!([{"op": "remove", "path": ENT}]),
            Yields(user_with(|d| {
                del(d, ENT);
            })),
        ),
        u(
            "an extension object in a path-less value is merged",
            json!([{"op": "add", "value": {ENT: {"division": "Theme Park", "manager": "m-3"}}}]),
            Yields(user_with(|d| {
                d[ENT]["division"] = json!("Theme Park");
                d[ENT]["manager"] = json!({"value": "m-3"});
            })),
        ),
        u(
            "Entra's URN-qualified manager key in a path-less value is wrapped",
            json!([{"op": "Replace", "value": {ENT_MANAGER: "m-9"}}]),
            Yields(user_with(|d| d[ENT]["manager"] = json!({"value": "m-9"}))),
        ),
        u(
            "a null extension attribute in a path-less extension object unassigns it",
            json!([{"op": "replace", "value": {ENT: {"department": null}}}]),
            Yields(user_with(|d| {
                del(d, ENT);
            })),
        ),
        u(
            "an Omni user attribute is replaced by its URN path",
            json!([{"op": "replace", "path": "urn:omni:params:1.0:UserAttribute:good_blob", "value": "y"}]),
            Yields(user_with(|d| d[UA]["good_blob"] = json!("y"))),
        ),
        u(
            "a new Omni user attribute is added beside the others",
            json!([{"op": "add", "path": "urn:omni:params:1.0:UserAttribute:shoe_size", "value": 42}]),
            Yields(user_with(|d| d[UA]["shoe_size"] = json!(42))),
        ),
        u(
            "removing the last Omni user attribute removes the extension",
            json!([{"op": "remove", "path": "urn:omni:params:1.0:UserAttribute:good_blob"}]),
            Yields(user_with(|d| {
                del(d, UA);
            })),
        ),
        u(
            "an Omni user-attribute object in a path-less value is merged",
            json!([{"op": "add", "value": {UA: {"Shoe Size": 42, "good_blob": null}}}]),
            Yields(user_with(|d| d[UA] = json!({"Shoe Size": 42}))),
        ),
    ]);
}

#[test]
fn multi_valued_attributes_follow_rfc_7644_and_entra() {
    check(vec![
        u(
            "replace of a filtered sub-attribute updates the matching element",
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@x.com"}]),
            Yields(user_with(|d| d["emails"][0]["value"] = json!("new@x.com"))),
        ),
        on(
            "replace of a filtered sub-attribute with no match adds the element (Entra)",
            user_with(|d| d["emails"] = json!([{"value": "babs@home.org", "type": "home"}])),
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@x.com"}]),
            Yields(user_with(|d| {
                d["emails"] = json!([
                    {"value": "babs@home.org", "type": "home"},
                    {"value": "new@x.com", "type": "work"}
                ]);
            })),
        ),
        on(
            "add through a filtered sub-attribute with no match adds the element",
            user_with(|d| {
                del(d, "emails");
            }),
            json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "new@x.com"}]),
            Yields(user_with(|d| {
                d["emails"] = json!([{"value": "new@x.com", "type": "work"}])
            })),
        ),
        u(
            "an eq conjunction describes the whole added element",
            json!([{"op": "replace", "path": "phoneNumbers[type eq \"work\" and primary eq true].value", "value": "555-2"}]),
            Yields(user_with(|d| {
                d["phoneNumbers"] = json!([
                    {"value": "555-1", "type": "mobile"},
                    {"value": "555-2", "type": "work", "primary": true}
                ]);
            })),
        ),
        u(
            "replace of a filtered street address updates it",
            json!([{"op": "replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Main St"}]),
            Yields(user_with(|d| {
                d["addresses"][0]["streetAddress"] = json!("1 Main St")
            })),
        ),
        u(
            "replace of a street address of a missing home address adds it",
            json!([{"op": "replace", "path": "addresses[type eq \"home\"].streetAddress", "value": "2 Elm St"}]),
            Yields(user_with(|d| {
                d["addresses"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "home", "streetAddress": "2 Elm St"}));
            })),
        ),
        u(
            "filter values compare case-insensitively where caseExact is false",
            json!([{"op": "replace", "path": "emails[type eq \"WORK\"].display", "value": "Work"}]),
            Yields(user_with(|d| d["emails"][0]["display"] = json!("Work"))),
        ),
        u(
            "replace of a filtered element swaps the whole element",
            json!([{"op": "replace", "path": "phoneNumbers[type eq \"mobile\"]", "value": {"value": "555-9", "type": "mobile"}}]),
            Yields(user_with(|d| {
                d["phoneNumbers"] = json!([{"value": "555-9", "type": "mobile"}]);
            })),
        ),
        u(
            "add to a filtered element merges sub-attributes into it",
            json!([{"op": "add", "path": "addresses[type eq \"work\"]", "value": {"locality": "Hollywood"}}]),
            Yields(user_with(|d| {
                d["addresses"][0]["locality"] = json!("Hollywood")
            })),
        ),
        u(
            "adding a primary email clears the previous primary",
            json!([{"op": "add", "path": "emails", "value": [{"value": "new@x.com", "type": "other", "primary": true}]}]),
            Yields(user_with(|d| {
                d["emails"][0]["primary"] = json!(false);
                d["emails"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"value": "new@x.com", "type": "other", "primary": true}));
            })),
        ),
        u(
            "making another element primary through a filter clears the old one",
            json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": "True"}]),
            Yields(user_with(|d| {
                d["emails"][0]["primary"] = json!(false);
                d["emails"][1]["primary"] = json!(true);
            })),
        ),
        u(
            "adding an email already present (in another case) changes nothing",
            json!([{"op": "add", "path": "emails", "value": [{"value": "BJensen@Example.com", "type": "work"}]}]),
            Unchanged,
        ),
        u(
            "a single object added to a multi-valued attribute is appended",
            json!([{"op": "add", "path": "phoneNumbers", "value": {"value": "555-3", "type": "fax"}}]),
            Yields(user_with(|d| {
                d["phoneNumbers"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"value": "555-3", "type": "fax"}));
            })),
        ),
        u(
            "a path-less add appends to a multi-valued attribute",
            json!([{"op": "add", "value": {"phoneNumbers": [{"value": "555-3"}]}}]),
            Yields(user_with(|d| {
                d["phoneNumbers"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"value": "555-3"}));
            })),
        ),
        u(
            "replace without a filter replaces the whole array",
            json!([{"op": "replace", "path": "emails", "value": [{"value": "only@x.com"}]}]),
            Yields(user_with(|d| {
                d["emails"] = json!([{"value": "only@x.com"}])
            })),
        ),
        u(
            "replace with an empty array unassigns the attribute",
            json!([{"op": "replace", "path": "emails", "value": []}]),
            Yields(user_with(|d| {
                del(d, "emails");
            })),
        ),
        u(
            "remove with a filter removes the matching elements",
            json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]),
            Yields(user_with(|d| {
                d["emails"].as_array_mut().unwrap().pop();
            })),
        ),
        u(
            "remove with a filter matching nothing changes nothing",
            json!([{"op": "remove", "path": "emails[type eq \"fax\"]"}]),
            Unchanged,
        ),
        u(
            "removing the last element unassigns the attribute",
            json!([{"op": "remove", "path": "phoneNumbers[type eq \"mobile\"]"}]),
            Yields(user_with(|d| {
                del(d, "phoneNumbers");
            })),
        ),
        u(
            "remove of a filtered sub-attribute keeps the element",
            json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}]),
            Yields(user_with(|d| {
                d["emails"][0].as_object_mut().unwrap().remove("primary");
            })),
        ),
        u(
            "remove of a sub-attribute without a filter affects every element",
            json!([{"op": "remove", "path": "emails.type"}]),
            Yields(user_with(|d| {
                d["emails"] = json!([
                    {"value": "bjensen@example.com", "primary": true},
                    {"value": "babs@home.org"}
                ]);
            })),
        ),
        u(
            "Entra removes listed emails by their value",
            json!([{"op": "Remove", "path": "emails", "value": [{"value": "BABS@home.org"}]}]),
            Yields(user_with(|d| {
                d["emails"].as_array_mut().unwrap().pop();
            })),
        ),
        u(
            "remove of the whole multi-valued attribute",
            json!([{"op": "remove", "path": "addresses"}]),
            Yields(user_with(|d| {
                del(d, "addresses");
            })),
        ),
    ]);
}

#[test]
fn group_membership_patches_match_okta_and_entra() {
    check(vec![
        g(
            "adding a member appends it",
            json!([{"op": "add", "path": "members", "value": [{"value": "u-3"}]}]),
            Yields(group_with(|d| {
                d["members"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"value": "u-3"}));
            })),
        ),
        g(
            "adding an existing member is a no-op",
            json!([{"op": "add", "path": "members", "value": [{"value": "u-1", "display": "Babs"}]}]),
            Unchanged,
        ),
        g(
            "adding several members skips the ones present",
            json!([{"op": "Add", "path": "members", "value": [{"value": "u-2"}, {"value": "u-4", "type": "User"}]}]),
            Yields(group_with(|d| {
                d["members"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"value": "u-4", "type": "User"}));
            })),
        ),
        g(
            "Okta removes a member by filter path",
            json!([{"op": "remove", "path": "members[value eq \"u-1\"]"}]),
            Yields(group_with(|d| {
                d["members"] = json!([{"value": "u-2", "type": "User"}])
            })),
        ),
        g(
            "removing an absent member by filter is a no-op",
            json!([{"op": "remove", "path": "members[value eq \"u-9\"]"}]),
            Unchanged,
        ),
        g(
            "Entra removes members listed in the value",
            json!([{"op": "Remove", "path": "members", "value": [{"value": "u-1"}, {"value": "u-2"}]}]),
            Yields(group_with(|d| {
                del(d, "members");
            })),
        ),
        g(
            "removing members listed in the value ignores absent ones",
            json!([{"op": "Remove", "path": "members", "value": [{"value": "u-9"}]}]),
            Unchanged,
        ),
        g(
            "removing members without a value removes them all",
            json!([{"op": "remove", "path": "members"}]),
            Yields(group_with(|d| {
                del(d, "members");
            })),
        ),
        g(
            "replacing members replaces them all",
            json!([{"op": "replace", "path": "members", "value": [{"value": "u-3"}]}]),
            Yields(group_with(|d| d["members"] = json!([{"value": "u-3"}]))),
        ),
        g(
            "Okta's path-less group rename with its own id ignores the id",
            json!([{"op": "replace", "value": {"id": "g-1", "displayName": "Ops 2"}}]),
            Yields(group_with(|d| d["displayName"] = json!("Ops 2"))),
        ),
        g(
            "setting an immutable member type to its current value is allowed",
            json!([{"op": "replace", "path": "members[value eq \"u-1\"].type", "value": "User"}]),
            Unchanged,
        ),
        Case {
            name: "setting an unset immutable sub-attribute is allowed",
            rt: &GROUP_RESOURCE,
            doc: json!({"displayName": "Ops", "members": [{"value": "u-1"}]}),
            ops: json!([{"op": "add", "path": "members[value eq \"u-1\"].type", "value": "User"}]),
            expect: Yields(
                json!({"displayName": "Ops", "members": [{"value": "u-1", "type": "User"}]}),
            ),
        },
    ]);
}

#[test]
fn invalid_targets_and_values_are_rejected() {
    use ScimType::{InvalidPath, InvalidSyntax, InvalidValue, Mutability, NoTarget};
    check(vec![
        u(
            "an unknown attribute is an invalid path naming it",
            json!([{"op": "replace", "path": "favouriteColour", "value": "blue"}]),
            Fails(InvalidPath, "favouriteColour"),
        ),
        u(
            "an unknown sub-attribute is an invalid path",
            json!([{"op": "add", "path": "name.nick", "value": "B"}]),
            Fails(InvalidPath, "name.nick"),
        ),
        u(
            "an unknown extension attribute is an invalid path",
            json!([{"op": "add", "path": format!("{ENT}:badge"), "value": "B"}]),
            Fails(InvalidPath, "badge"),
        ),
        u(
            "an unknown key in a path-less value is an invalid path",
            json!([{"op": "add", "value": {"nickName": "B", "foo": 1}}]),
            Fails(InvalidPath, "foo"),
        ),
        u(
            "an unknown key in an extension object is an invalid path",
            json!([{"op": "add", "path": ENT, "value": {"badge": 1}}]),
            Fails(InvalidPath, "badge"),
        ),
        u(
            "an unknown schema URN is an invalid path",
            json!([{"op": "add", "path": "urn:acme:params:1.0:Thing:widget", "value": 1}]),
            Fails(InvalidPath, "urn:acme:params:1.0:Thing"),
        ),
        g(
            "a user extension is unknown on groups",
            json!([{"op": "add", "path": ENT_DEPARTMENT, "value": "x"}]),
            Fails(InvalidPath, ENT),
        ),
        u(
            "a value filter on a single-valued attribute is an invalid path",
            json!([{"op": "replace", "path": "name[givenName eq \"B\"]", "value": {}}]),
            Fails(InvalidPath, "multi-valued"),
        ),
        u(
            "a value filter on an unknown sub-attribute is an invalid path",
            json!([{"op": "replace", "path": "emails[label eq \"x\"].value", "value": "a@b.c"}]),
            Fails(InvalidPath, "label"),
        ),
        u(
            "a sub-attribute of an Omni user attribute is an invalid path",
            json!([{"op": "add", "path": "urn:omni:params:1.0:UserAttribute:good_blob.x", "value": 1}]),
            Fails(InvalidPath, "user attributes"),
        ),
        u(
            "remove without a path is no target",
            json!([{"op": "remove", "value": {"displayName": "Babs"}}]),
            Fails(NoTarget, "path"),
        ),
        u(
            "a filter matching nothing that is not an eq conjunction is no target",
            json!([{"op": "replace", "path": "emails[value co \"nowhere\"].value", "value": "a@b.c"}]),
            Fails(NoTarget, "emails"),
        ),
        u(
            "an or filter matching nothing is no target",
            json!([{"op": "replace", "path": "emails[type eq \"fax\" or type eq \"pager\"]", "value": {"value": "x"}}]),
            Fails(NoTarget, "emails"),
        ),
        u(
            "contradictory eq comparisons describe no element",
            json!([{"op": "add", "path": "emails[type eq \"a\" and type eq \"b\"].value", "value": "x"}]),
            Fails(NoTarget, "emails"),
        ),
        u(
            "id is readOnly",
            json!([{"op": "replace", "path": "id", "value": "x"}]),
            Fails(Mutability, "id"),
        ),
        u(
            "meta sub-attributes are readOnly",
            json!([{"op": "replace", "path": "meta.created", "value": "2024-01-01T00:00:00Z"}]),
            Fails(Mutability, "meta.created"),
        ),
        u(
            "a user's groups are readOnly",
            json!([{"op": "add", "path": "groups", "value": [{"value": "g-1"}]}]),
            Fails(Mutability, "groups"),
        ),
        u(
            "meta in a path-less value is readOnly",
            json!([{"op": "replace", "value": {"meta": {"version": "W/\"1\""}}}]),
            Fails(Mutability, "meta"),
        ),
        u(
            "groups in a path-less value is readOnly",
            json!([{"op": "add", "value": {"groups": [{"value": "g-1"}]}}]),
            Fails(Mutability, "groups"),
        ),
        u(
            "schemas as a path cannot be modified",
            json!([{"op": "replace", "path": "schemas", "value": []}]),
            Fails(Mutability, "schemas"),
        ),
        u(
            "the readOnly manager displayName cannot be set",
            json!([{"op": "replace", "path": format!("{ENT_MANAGER}.displayName"), "value": "Boss"}]),
            Fails(Mutability, "displayName"),
        ),
        u(
            "the readOnly lastLogin cannot be set",
            json!([{"op": "replace", "value": {OMNI_USER_EXTENSION_SCHEMA: {"lastLogin": "2024-01-01T00:00:00Z"}}}]),
            Fails(Mutability, "lastLogin"),
        ),
        u(
            "removing the required userName is a mutability error",
            json!([{"op": "remove", "path": "userName"}]),
            Fails(Mutability, "required"),
        ),
        u(
            "replacing userName with null is a removal too",
            json!([{"op": "replace", "value": {"userName": null}}]),
            Fails(Mutability, "userName"),
        ),
        g(
            "removing a group's displayName is a mutability error",
            json!([{"op": "remove", "path": "displayName"}]),
            Fails(Mutability, "displayName"),
        ),
        g(
            "a member's display is readOnly",
            json!([{"op": "replace", "path": "members[value eq \"u-1\"].display", "value": "B"}]),
            Fails(Mutability, "display"),
        ),
        g(
            "a member's immutable value cannot be changed",
            json!([{"op": "replace", "path": "members[value eq \"u-1\"].value", "value": "u-9"}]),
            Fails(Mutability, "immutable"),
        ),
        g(
            "a member's immutable value cannot be removed",
            json!([{"op": "remove", "path": "members[value eq \"u-1\"].value"}]),
            Fails(Mutability, "immutable"),
        ),
        g(
            "a member's immutable type cannot be changed",
            json!([{"op": "add", "path": "members[value eq \"u-2\"]", "value": {"type": "Group"}}]),
            Fails(Mutability, "immutable"),
        ),
        u(
            "a non-boolean string for a boolean is an invalid value",
            json!([{"op": "replace", "path": "active", "value": "maybe"}]),
            Fails(InvalidValue, "active"),
        ),
        u(
            "a number for a string is an invalid value",
            json!([{"op": "replace", "path": "displayName", "value": 42}]),
            Fails(InvalidValue, "displayName"),
        ),
        u(
            "an array for a single-valued attribute is an invalid value",
            json!([{"op": "add", "path": "title", "value": ["a"]}]),
            Fails(InvalidValue, "single-valued"),
        ),
        u(
            "a string for a complex attribute is an invalid value",
            json!([{"op": "add", "path": "name", "value": "Barbara Jensen"}]),
            Fails(InvalidValue, "name"),
        ),
        u(
            "a string element for emails is an invalid value",
            json!([{"op": "add", "path": "emails", "value": ["a@b.c"]}]),
            Fails(InvalidValue, "emails"),
        ),
        u(
            "a string replacing a filtered element is an invalid value",
            json!([{"op": "replace", "path": "emails[type eq \"work\"]", "value": "a@b.c"}]),
            Fails(InvalidValue, "emails"),
        ),
        u(
            "an ill-typed eq comparison cannot build an element",
            json!([{"op": "replace", "path": "emails[primary eq 1].value", "value": "a@b.c"}]),
            Fails(InvalidValue, "primary"),
        ),
        u(
            "an extension path given a non-object is an invalid value",
            json!([{"op": "replace", "path": ENT, "value": "Sales"}]),
            Fails(InvalidValue, ENT),
        ),
        u(
            "an Omni user attribute that is an array is an invalid value",
            json!([{"op": "add", "path": "urn:omni:params:1.0:UserAttribute:tags", "value": ["a"]}]),
            Fails(InvalidValue, "tags"),
        ),
        u(
            "a path-less value that is not an object is an invalid value",
            json!([{"op": "replace", "value": "x"}]),
            Fails(InvalidValue, "object"),
        ),
        u(
            "an unknown sub-attribute inside a value is invalid syntax",
            json!([{"op": "replace", "path": "name", "value": {"nick": "B"}}]),
            Fails(InvalidSyntax, "name.nick"),
        ),
        u(
            "add without a value is invalid syntax",
            json!([{"op": "add", "path": "title"}]),
            Fails(InvalidSyntax, "requires a value"),
        ),
        u(
            "two elements made primary at once is an invalid value",
            json!([{"op": "replace", "path": "emails.primary", "value": true}]),
            Fails(InvalidValue, "primary"),
        ),
        u(
            "two primaries in an added array is an invalid value",
            json!([{"op": "add", "path": "emails", "value": [{"value": "a", "primary": true}, {"value": "b", "primary": true}]}]),
            Fails(InvalidValue, "primary"),
        ),
        u(
            "a failing third operation fails the whole request, naming it",
            json!([
                {"op": "replace", "path": "active", "value": false},
                {"op": "add", "path": "title", "value": "T"},
                {"op": "add", "path": "nope", "value": 1}
            ]),
            Fails(InvalidPath, "Operations[2]"),
        ),
    ]);
}

#[test]
fn a_failing_operation_after_good_ones_fails_while_the_good_ones_alone_succeed() {
    let doc = object(user());
    let good = parse_request(&object(json!({"Operations": [
        {"op": "replace", "path": "active", "value": false},
        {"op": "add", "path": "emails", "value": [{"value": "z@x.com"}]}
    ]})))
    .unwrap();
    let bad = parse_request(&object(
        json!({"Operations": [{"op": "replace", "path": "id", "value": "x"}]}),
    ))
    .unwrap();
    assert!(
        apply(&USER_RESOURCE, &doc, &good, &Limits::default())
            .unwrap()
            .changed
    );
    let all: Vec<PatchOp> = good.iter().chain(&bad).cloned().collect();
    let err = apply(&USER_RESOURCE, &doc, &all, &Limits::default()).unwrap_err();
    assert_eq!(err.scim_type, Some(ScimType::Mutability));
    assert_eq!(doc, object(user()), "the input document is never modified");
}

#[test]
fn adaptations_name_each_idp_compatibility_normalisation() {
    let cases: Vec<(&str, Value, Value, &[&str])> = vec![
        (
            "a plain replace needs no adaptation",
            user(),
            json!([{"op": "replace", "path": "active", "value": false}]),
            &[],
        ),
        (
            "Entra's string boolean",
            user(),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
            &[BOOLEAN_COERCED],
        ),
        (
            "Entra's bare-string manager",
            user(),
            json!([{"op": "Add", "path": ENT_MANAGER, "value": "mgr-id"}]),
            &[MANAGER_WRAPPED],
        ),
        (
            "Entra's dotted and URN-qualified path-less keys",
            user(),
            json!([{"op": "Replace", "value": {"name.givenName": "X", ENT_EMPLOYEE_NUMBER: "42"}}]),
            &[DOTTED_KEY, URN_KEY],
        ),
        (
            "a replace on a missing filtered element",
            user(),
            json!([{"op": "replace", "path": "emails[type eq \"other\"].value", "value": "o@x.com"}]),
            &[REPLACE_ADDED],
        ),
        (
            "an add on a missing filtered element",
            user(),
            json!([{"op": "add", "path": "emails[type eq \"other\"].value", "value": "o@x.com"}]),
            &[ADD_ADDED],
        ),
        (
            "Okta's group id in a path-less value",
            group(),
            json!([{"op": "replace", "value": {"id": "g-1", "displayName": "Ops"}}]),
            &[ID_IGNORED],
        ),
        (
            "a lone element for a multi-valued attribute",
            group(),
            json!([{"op": "add", "path": "members", "value": {"value": "u-5"}}]),
            &[SINGLE_WRAPPED],
        ),
        (
            "each adaptation is named once",
            user(),
            json!([
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Replace", "path": "emails[type eq \"home\"].primary", "value": "True"}
            ]),
            &[BOOLEAN_COERCED],
        ),
    ];
    for (name, doc, ops, want) in cases {
        let rt = if doc.get("userName").is_some() {
            &USER_RESOURCE
        } else {
            &GROUP_RESOURCE
        };
        let out = run(rt, &doc, ops).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(out.adaptations, want, "{name}");
    }
}

#[test]
fn parse_request_accepts_idp_bodies_and_rejects_malformed_ones() {
    use ScimType::{InvalidPath, InvalidSyntax, InvalidValue};
    let one = json!([{"op": "add", "path": "title", "value": "T"}]);
    type Want = Result<Vec<OpKind>, (ScimType, &'static str)>;
    let cases: Vec<(&str, Value, Want)> = vec![
        (
            "a complete body parses",
            json!({"schemas": [PATCH_OP_SCHEMA], "Operations": one}),
            Ok(vec![OpKind::Add]),
        ),
        (
            "schemas may be omitted",
            json!({"Operations": one}),
            Ok(vec![OpKind::Add]),
        ),
        (
            "the Operations key may be in any case",
            json!({"operations": one}),
            Ok(vec![OpKind::Add]),
        ),
        (
            "op names may be in any case",
            json!({"Operations": [
                {"op": "Add", "value": {}}, {"op": "REPLACE", "value": {}}, {"op": "Remove", "path": "title"}
            ]}),
            Ok(vec![OpKind::Add, OpKind::Replace, OpKind::Remove]),
        ),
        (
            "schemas without the PatchOp URN is invalid syntax",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "Operations": one}),
            Err((InvalidSyntax, "PatchOp")),
        ),
        (
            "schemas that is not a list is invalid syntax",
            json!({"schemas": 1, "Operations": one}),
            Err((InvalidSyntax, "schemas")),
        ),
        (
            "missing Operations is invalid syntax",
            json!({"schemas": [PATCH_OP_SCHEMA]}),
            Err((InvalidSyntax, "Operations")),
        ),
        (
            "Operations that is not an array is invalid syntax",
            json!({"Operations": {"op": "add"}}),
            Err((InvalidSyntax, "array")),
        ),
        (
            "empty Operations is an invalid value",
            json!({"Operations": []}),
            Err((InvalidValue, "at least one")),
        ),
        (
            "an operation that is not an object is invalid syntax",
            json!({"Operations": ["add"]}),
            Err((InvalidSyntax, "Operations[0]")),
        ),
        (
            "an unknown op is invalid syntax naming it",
            json!({"Operations": [{"op": "move", "path": "title"}]}),
            Err((InvalidSyntax, "move")),
        ),
        (
            "a missing op is invalid syntax",
            json!({"Operations": [{"path": "title"}]}),
            Err((InvalidSyntax, "op is required")),
        ),
        (
            "a non-string op is invalid syntax",
            json!({"Operations": [{"op": 1}]}),
            Err((InvalidSyntax, "string")),
        ),
        (
            "a malformed path is an invalid path",
            json!({"Operations": [{"op": "remove", "path": "emails[type eq"}]}),
            Err((InvalidPath, "never closed")),
        ),
        (
            "a non-string path is an invalid path",
            json!({"Operations": [{"op": "remove", "path": 42}]}),
            Err((InvalidPath, "string")),
        ),
        (
            "errors name the operation's index",
            json!({"Operations": [{"op": "add", "value": {}}, {"op": "nope"}]}),
            Err((InvalidSyntax, "Operations[1]")),
        ),
    ];
    for (name, body, want) in cases {
        let got = parse_request(&object(body));
        match (got, want) {
            (Ok(ops), Ok(kinds)) => {
                let got: Vec<OpKind> = ops.iter().map(|o| o.op).collect();
                assert_eq!(got, kinds, "{name}");
            }
            (Err(err), Err((ty, fragment))) => {
                assert_eq!(err.scim_type, Some(ty), "{name}: {err}");
                assert!(err.detail.contains(fragment), "{name}: {}", err.detail);
            }
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn parse_request_keeps_paths_and_explicit_nulls() {
    let ops = parse_request(&object(json!({"Operations": [
        {"OP": "replace", "Path": "emails[type eq \"work\"].value", "Value": null},
        {"op": "add", "value": {"title": "T"}}
    ]})))
    .unwrap();
    assert_eq!(
        ops[0],
        PatchOp {
            op: OpKind::Replace,
            path: Some(PatchPath::parse("emails[type eq \"work\"].value").unwrap()),
            value: Some(Value::Null),
        }
    );
    assert_eq!(ops[1].path, None);
    assert_eq!(ops[1].value, Some(json!({"title": "T"})));
}

#[test]
fn requested_password_finds_the_password_the_patch_would_set() {
    let cases: Vec<(&str, Value, Option<&str>)> = vec![
        (
            "a password path",
            json!([{"op": "replace", "path": "password", "value": "p1"}]),
            Some("p1"),
        ),
        (
            "a password path in another case",
            json!([{"op": "Add", "path": "PASSWORD", "value": "p1"}]),
            Some("p1"),
        ),
        (
            "a password key in a path-less value",
            json!([{"op": "replace", "value": {"active": true, "password": "p2"}}]),
            Some("p2"),
        ),
        (
            "a core-URN-qualified password key",
            json!([{"op": "replace", "value": {"urn:ietf:params:scim:schemas:core:2.0:User:password": "p3"}}]),
            Some("p3"),
        ),
        (
            "the last one wins",
            json!([
                {"op": "replace", "path": "password", "value": "p1"},
                {"op": "replace", "value": {"password": "p2"}}
            ]),
            Some("p2"),
        ),
        (
            "a later remove clears it",
            json!([
                {"op": "replace", "path": "password", "value": "p1"},
                {"op": "remove", "path": "password"}
            ]),
            None,
        ),
        (
            "no password anywhere",
            json!([{"op": "replace", "value": {"active": false}}]),
            None,
        ),
        (
            "a non-string password is not one",
            json!([{"op": "replace", "path": "password", "value": 42}]),
            None,
        ),
        (
            "a password sub-attribute elsewhere is not the password",
            json!([{"op": "add", "path": "urn:omni:params:1.0:UserAttribute:password", "value": "x"}]),
            None,
        ),
    ];
    for (name, ops, want) in cases {
        let body = object(json!({"Operations": ops}));
        let ops = parse_request(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(requested_password(&ops).as_deref(), want, "{name}");
    }
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    const PATHS: &[&str] = &[
        "active",
        "displayName",
        "userName",
        "name",
        "name.givenName",
        "emails",
        "emails.value",
        "emails.primary",
        "emails[type eq \"work\"]",
        "emails[type eq \"work\"].value",
        "emails[type eq \"other\"].primary",
        "emails[value co \"x\"].type",
        "phoneNumbers[type eq \"mobile\"]",
        "addresses[type eq \"home\"].streetAddress",
        "groups",
        "id",
        "meta.created",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        "urn:omni:params:1.0:UserAttribute",
        "urn:omni:params:1.0:UserAttribute:good_blob",
        "password",
        "nope",
    ];

    fn small_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::from),
            prop::sample::select(vec!["work", "True", "x", "", "m-1"]).prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop::sample::select(vec![
                        "value",
                        "type",
                        "primary",
                        "givenName",
                        "department",
                        "display",
                    ]),
                    inner,
                    0..3,
                )
                .prop_map(|m| Value::Object(
                    m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )),
            ]
        })
    }

    fn op() -> impl Strategy<Value = PatchOp> {
        (
            prop::sample::select(vec![OpKind::Add, OpKind::Remove, OpKind::Replace]),
            prop::option::of(prop::sample::select(PATHS.to_vec())),
            prop::option::of(small_value()),
        )
            .prop_map(|(op, path, value)| PatchOp {
                op,
                path: path.map(|p| PatchPath::parse(p).unwrap()),
                value,
            })
    }

    proptest! {
        #[test]
        fn apply_never_panics_and_a_failure_poisons_any_longer_sequence(
            ops in prop::collection::vec(op(), 1..5),
        ) {
            let doc = object(user());
            match apply(&USER_RESOURCE, &doc, &ops, &Limits::default()) {
                Ok(out) => {
                    // Applying to the result again must not panic either.
                    let _ = apply(&USER_RESOURCE, &out.doc, &ops, &Limits::default());
                    prop_assert_eq!(out.changed, out.doc != doc);
                }
                Err(err) => {
                    prop_assert_eq!(err.status, 400);
                    let good = PatchOp {
                        op: OpKind::Replace,
                        path: Some(PatchPath::parse("title").unwrap()),
                        value: Some(json!("T")),
                    };
                    let longer: Vec<PatchOp> =
                        std::iter::once(good).chain(ops.iter().cloned()).collect();
                    prop_assert!(apply(&USER_RESOURCE, &doc, &longer, &Limits::default()).is_err());
                }
            }
        }
    }
}
