//! Schema tests: every RFC 7643 attribute resolves, lookups are case-insensitive, and the
//! JSON representations match RFC 7643 §6 and §7.

use super::*;
use crate::scim::{
    ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, OMNI_USER_EXTENSION_SCHEMA, USER_ATTRIBUTE_SCHEMA,
    USER_SCHEMA,
};

const ENTERPRISE: Option<&str> = Some(ENTERPRISE_USER_SCHEMA);

#[test]
fn every_rfc_7643_user_attribute_and_sub_attribute_resolves() {
    // RFC 7643 §8.7.1, in the order the RFC lists them.
    let names: &[(&str, &[&str])] = &[
        ("userName", &[]),
        (
            "name",
            &[
                "formatted",
                "familyName",
                "givenName",
                "middleName",
                "honorificPrefix",
                "honorificSuffix",
            ],
        ),
        ("displayName", &[]),
        ("nickName", &[]),
        ("profileUrl", &[]),
        ("title", &[]),
        ("userType", &[]),
        ("preferredLanguage", &[]),
        ("locale", &[]),
        ("timezone", &[]),
        ("active", &[]),
        ("password", &[]),
        ("emails", &["value", "display", "type", "primary"]),
        ("phoneNumbers", &["value", "display", "type", "primary"]),
        ("ims", &["value", "display", "type", "primary"]),
        ("photos", &["value", "display", "type", "primary"]),
        (
            "addresses",
            &[
                "formatted",
                "streetAddress",
                "locality",
                "region",
                "postalCode",
                "country",
                "type",
                "primary",
            ],
        ),
        ("groups", &["value", "$ref", "display", "type"]),
        ("entitlements", &["value", "display", "type", "primary"]),
        ("roles", &["value", "display", "type", "primary"]),
        ("x509Certificates", &["value", "display", "type", "primary"]),
    ];
    for (attr, subs) in names {
        let (def, _) = USER_RESOURCE
            .resolve(None, &attr.to_uppercase(), None)
            .unwrap_or_else(|| panic!("{attr} does not resolve"));
        assert_eq!(def.name, *attr);
        for sub in *subs {
            let found = USER_RESOURCE.resolve(Some(USER_SCHEMA), attr, Some(&sub.to_lowercase()));
            let (_, sub_def) = found.unwrap_or_else(|| panic!("{attr}.{sub} does not resolve"));
            assert_eq!(sub_def.map(|d| d.name), Some(*sub));
        }
        assert_eq!(
            def.sub_attributes.len(),
            subs.len(),
            "{attr} has extra sub-attributes"
        );
    }
    // The list above plus externalId is the whole schema.
    assert_eq!(USER.attributes.len(), names.len() + 1);
}

#[test]
fn resolve_answers_the_table_of_paths() {
    // (resource type, schema, attribute, sub-attribute, expected canonical names)
    type Case = (
        &'static ResourceTypeDef,
        Option<&'static str>,
        &'static str,
        Option<&'static str>,
        Option<(&'static str, Option<&'static str>)>,
    );
    let cases: &[Case] = &[
        (
            &USER_RESOURCE,
            None,
            "USERNAME",
            None,
            Some(("userName", None)),
        ),
        (
            &USER_RESOURCE,
            Some("URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER"),
            "emails",
            Some("Value"),
            Some(("emails", Some("value"))),
        ),
        (
            &USER_RESOURCE,
            ENTERPRISE,
            "Manager",
            Some("DISPLAYNAME"),
            Some(("manager", Some("displayName"))),
        ),
        (
            &USER_RESOURCE,
            ENTERPRISE,
            "employeenumber",
            None,
            Some(("employeeNumber", None)),
        ),
        (&USER_RESOURCE, None, "employeeNumber", None, None),
        (
            &USER_RESOURCE,
            Some(OMNI_USER_EXTENSION_SCHEMA),
            "lastlogin",
            None,
            Some(("lastLogin", None)),
        ),
        (
            &USER_RESOURCE,
            Some(USER_ATTRIBUTE_SCHEMA),
            "anything",
            None,
            None,
        ),
        (&USER_RESOURCE, None, "id", None, Some(("id", None))),
        (
            &USER_RESOURCE,
            None,
            "META",
            Some("lastmodified"),
            Some(("meta", Some("lastModified"))),
        ),
        (
            &USER_RESOURCE,
            None,
            "externalid",
            None,
            Some(("externalId", None)),
        ),
        (&USER_RESOURCE, ENTERPRISE, "id", None, None),
        (&USER_RESOURCE, None, "userName", Some("value"), None),
        (&USER_RESOURCE, None, "emails", Some("nope"), None),
        (&USER_RESOURCE, None, "nope", None, None),
        (
            &USER_RESOURCE,
            Some("urn:example:unknown"),
            "userName",
            None,
            None,
        ),
        (
            &GROUP_RESOURCE,
            None,
            "displayname",
            None,
            Some(("displayName", None)),
        ),
        (
            &GROUP_RESOURCE,
            None,
            "members",
            Some("$REF"),
            Some(("members", Some("$ref"))),
        ),
        (
            &GROUP_RESOURCE,
            None,
            "externalId",
            None,
            Some(("externalId", None)),
        ),
        (
            &GROUP_RESOURCE,
            Some(GROUP_SCHEMA),
            "meta",
            Some("version"),
            Some(("meta", Some("version"))),
        ),
        (&GROUP_RESOURCE, ENTERPRISE, "manager", None, None),
        (&GROUP_RESOURCE, None, "userName", None, None),
    ];
    for (rt, schema, attr, sub, expected) in cases {
        let got = rt
            .resolve(*schema, attr, *sub)
            .map(|(a, s)| (a.name, s.map(|s| s.name)));
        assert_eq!(got, *expected, "{schema:?} {attr} {sub:?} on {}", rt.id);
    }
}

#[test]
fn user_schema_json_carries_the_rfc_characteristics() {
    let json = USER.to_json("https://example.com/scim/v2/");
    let attrs = json["attributes"].as_array().cloned().unwrap_or_default();
    // A missing attribute yields null, which then fails the assertions below.
    let by_name = |name: &str| {
        let found = attrs.iter().find(|a| a["name"] == name);
        found.cloned().unwrap_or_default()
    };
    let user_name = by_name("userName");
    assert_eq!(user_name["uniqueness"], "server");
    assert_eq!(user_name["required"], true);
    assert_eq!(user_name["caseExact"], false);
    let password = by_name("password");
    assert_eq!(password["returned"], "never");
    assert_eq!(password["mutability"], "writeOnly");
    let emails = by_name("emails");
    assert_eq!(emails["multiValued"], true);
    assert_eq!(
        emails["subAttributes"][2]["canonicalValues"],
        json!(["work", "home", "other"])
    );
    assert!(emails.get("caseExact").is_none());
    assert_eq!(by_name("profileUrl")["referenceTypes"], json!(["external"]));
    assert_eq!(json["schemas"], json!([SCHEMA_SCHEMA]));
    assert_eq!(json["id"], USER_SCHEMA);
    assert_eq!(json["meta"]["resourceType"], "Schema");
    assert_eq!(
        json["meta"]["location"],
        "https://example.com/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"
    );
}

#[test]
fn every_schema_serialises_with_its_id_and_attribute_count() {
    for schema in all_schemas() {
        let json = schema.to_json("https://h");
        assert_eq!(json["id"], schema.id);
        assert_eq!(
            json["attributes"].as_array().map(Vec::len),
            Some(schema.attributes.len())
        );
        assert_eq!(
            schema_by_id(&schema.id.to_uppercase()).map(|s| s.id),
            Some(schema.id)
        );
    }
    assert!(schema_by_id("urn:example:nope").is_none());
}

#[test]
fn resource_types_serialise_as_rfc_7643_section_6() {
    let user = USER_RESOURCE.to_json("https://example.com/v2");
    assert_eq!(
        user,
        json!({
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "User Account",
            "schema": USER_SCHEMA,
            "schemaExtensions": [
                {"schema": ENTERPRISE_USER_SCHEMA, "required": false},
                {"schema": USER_ATTRIBUTE_SCHEMA, "required": false},
                {"schema": OMNI_USER_EXTENSION_SCHEMA, "required": false},
            ],
            "meta": {"resourceType": "ResourceType", "location": "https://example.com/v2/ResourceTypes/User"},
        })
    );
    let group = GROUP_RESOURCE.to_json("https://example.com/v2");
    assert_eq!(
        group["schemaExtensions"],
        json!([{"schema": "urn:ietf:params:scim:schemas:extension:groupMembers:2.0:Group", "required": false}])
    );
    assert_eq!(group["endpoint"], "/Groups");
    assert_eq!(
        all_resource_types().map(|r| r.id),
        ["User", "Group", "GroupMember"]
    );
}

#[test]
fn characteristics_follow_the_rfc_for_the_special_attributes() {
    let get = |rt: &ResourceTypeDef, schema, attr, sub| {
        rt.resolve(schema, attr, sub).map(|(a, s)| s.unwrap_or(a))
    };
    // (definition, mutability, returned, case exact, uniqueness)
    let cases = [
        (
            get(&USER_RESOURCE, None, "id", None),
            Mutability::ReadOnly,
            Returned::Always,
            true,
            Uniqueness::Server,
        ),
        (
            get(&USER_RESOURCE, None, "externalId", None),
            Mutability::ReadWrite,
            Returned::Default,
            true,
            Uniqueness::None,
        ),
        (
            get(&USER_RESOURCE, None, "meta", Some("created")),
            Mutability::ReadOnly,
            Returned::Default,
            false,
            Uniqueness::None,
        ),
        (
            get(&USER_RESOURCE, None, "groups", None),
            Mutability::ReadOnly,
            Returned::Default,
            false,
            Uniqueness::None,
        ),
        (
            get(&USER_RESOURCE, None, "password", None),
            Mutability::WriteOnly,
            Returned::Never,
            false,
            Uniqueness::None,
        ),
        (
            get(&USER_RESOURCE, ENTERPRISE, "manager", Some("displayName")),
            Mutability::ReadOnly,
            Returned::Default,
            false,
            Uniqueness::None,
        ),
        (
            get(
                &USER_RESOURCE,
                Some(OMNI_USER_EXTENSION_SCHEMA),
                "lastLogin",
                None,
            ),
            Mutability::ReadOnly,
            Returned::Default,
            false,
            Uniqueness::None,
        ),
        (
            get(&GROUP_RESOURCE, None, "displayName", None),
            Mutability::ReadWrite,
            Returned::Default,
            false,
            Uniqueness::Server,
        ),
        (
            get(&GROUP_RESOURCE, None, "members", Some("value")),
            Mutability::Immutable,
            Returned::Default,
            false,
            Uniqueness::None,
        ),
    ];
    for (def, mutability, returned, case_exact, uniqueness) in cases {
        let Some(def) = def else {
            panic!("a special attribute does not resolve")
        };
        assert_eq!(
            (def.mutability, def.returned, def.case_exact, def.uniqueness),
            (mutability, returned, case_exact, uniqueness),
            "{}",
            def.name
        );
    }
    let x509 = USER
        .attribute("x509certificates")
        .and_then(|a| a.sub_attribute("value"));
    assert_eq!(x509.map(|d| d.ty), Some(AttrType::Binary));
    assert!(USER_ATTRIBUTE.attributes.is_empty());
}
