//! The contract and the router agree: openapi.yaml documents exactly the paths the router
//! serves, with the methods it accepts; every `{id}` path declares its `id` parameter; and the
//! file is UTF-8 OpenAPI 3.1. A live test checks that every documented operation is routed and
//! that `/openapi.yaml` serves this very file.
//!
//! No YAML library: the file is scanned line by line. Path keys are the lines matching
//! `^  /[^:]*:$` under `paths:`; methods are the four-space-indented keys under a path.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, StatusCode};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp};

backend_tests!(every_documented_operation_is_routed_and_the_contract_is_served);

const SPEC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml");

/// What the router in `src/http/mod.rs` serves: the SCIM routes relative to the SCIM base
/// (mounted at both `/scim/v2` and `/api/scim/v2`), including the lower-case aliases, then the
/// root routes, then the admin API. THIS TABLE MUST CHANGE WITH THE ROUTER: a route added to
/// or removed from `scim_routes` or `router` in `src/http/mod.rs`, or `routes` in
/// `src/http/admin.rs`, goes here, and into openapi.yaml.
const ROUTES: &[(&str, &[&str])] = &[
    // `for users in ["/Users", "/users"]`
    ("/Users", &["get", "post"]),
    ("/Users/.search", &["post"]),
    ("/Users/{id}", &["get", "put", "patch", "delete"]),
    ("/users", &["get", "post"]),
    ("/users/.search", &["post"]),
    ("/users/{id}", &["get", "put", "patch", "delete"]),
    // `for groups in ["/Groups", "/groups"]`
    ("/Groups", &["get", "post"]),
    ("/Groups/.search", &["post"]),
    ("/Groups/{id}", &["get", "put", "patch", "delete"]),
    ("/groups", &["get", "post"]),
    ("/groups/.search", &["post"]),
    ("/groups/{id}", &["get", "put", "patch", "delete"]),
    // Memberships (draft-zollner-scim-group-membership), no lower-case alias.
    ("/GroupMembers", &["get", "post"]),
    ("/GroupMembers/{id}", &["get", "delete"]),
    // Discovery and the root search.
    ("/ServiceProviderConfig", &["get"]),
    ("/ResourceTypes", &["get"]),
    ("/ResourceTypes/{id}", &["get"]),
    ("/Schemas", &["get"]),
    ("/Schemas/{id}", &["get"]),
    ("/.search", &["post"]),
    // Bulk (RFC 7644 §3.7), no lower-case alias.
    ("/Bulk", &["post"]),
    // Root routes (outside the SCIM base, no key).
    ("/healthz", &["get"]),
    ("/readyz", &["get"]),
    ("/metrics", &["get"]),
    ("/openapi.yaml", &["get"]),
    ("/events/jwks.json", &["get"]),
    ("/events/streams/{id}/poll", &["post"]),
    // The admin API (`admin::routes` in `src/http/admin.rs`, nested at `/admin/v1`).
    ("/admin/v1/orgs", &["get", "post"]),
    ("/admin/v1/orgs/{slug}", &["get", "patch", "delete"]),
    ("/admin/v1/orgs/{slug}/keys", &["get", "post"]),
    ("/admin/v1/orgs/{slug}/keys/{id}", &["delete"]),
    ("/admin/v1/orgs/{slug}/user-attributes", &["get", "post"]),
    ("/admin/v1/orgs/{slug}/user-attributes/{key}", &["delete"]),
    ("/admin/v1/orgs/{slug}/changes", &["get"]),
    ("/admin/v1/orgs/{slug}/rejected", &["get"]),
    ("/admin/v1/orgs/{slug}/streams", &["get", "post"]),
    ("/admin/v1/orgs/{slug}/streams/{id}", &["get", "delete"]),
    ("/admin/v1/deletions", &["get"]),
    ("/admin/v1/admin-keys", &["get", "post"]),
    ("/admin/v1/admin-keys/{id}", &["delete"]),
    ("/admin/v1/secrets", &["get", "post"]),
    ("/admin/v1/secrets/{id}", &["delete"]),
    ("/admin/v1/audit", &["get"]),
];

/// The routes of [`ROUTES`] served at the host root rather than under the SCIM base (the admin
/// API included).
const ROOT_ROUTES: &[&str] = &[
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.yaml",
    "/events/jwks.json",
    "/events/streams/{id}/poll",
    "/admin/v1/orgs",
    "/admin/v1/orgs/{slug}",
    "/admin/v1/orgs/{slug}/keys",
    "/admin/v1/orgs/{slug}/keys/{id}",
    "/admin/v1/orgs/{slug}/user-attributes",
    "/admin/v1/orgs/{slug}/user-attributes/{key}",
    "/admin/v1/orgs/{slug}/changes",
    "/admin/v1/orgs/{slug}/rejected",
    "/admin/v1/orgs/{slug}/streams",
    "/admin/v1/orgs/{slug}/streams/{id}",
    "/admin/v1/deletions",
    "/admin/v1/admin-keys",
    "/admin/v1/admin-keys/{id}",
    "/admin/v1/secrets",
    "/admin/v1/secrets/{id}",
    "/admin/v1/audit",
];

/// The console's HTML routes (`src/http/console.rs`): routed, but not API, so exempt from
/// openapi.yaml, schemathesis and the table above.
const HTML_ROUTES: &[&str] = &[
    "/admin",
    "/admin/sign-in",
    "/admin/sign-out",
    "/admin/console.css",
    "/admin/orgs/{slug}",
];

const METHODS: &[&str] = &[
    "get", "put", "post", "patch", "delete", "head", "options", "trace",
];

/// openapi.yaml, read at run time so that its encoding is checked here, not by the compiler.
fn spec() -> String {
    let bytes = std::fs::read(SPEC_PATH).expect("read openapi.yaml");
    String::from_utf8(bytes).expect("openapi.yaml is UTF-8")
}

/// One documented path item: its methods and the lines of its block.
#[derive(Debug, Default)]
struct PathItem {
    methods: BTreeSet<String>,
    lines: Vec<String>,
}

/// The path items under `paths:`, in document order, by a line scan.
fn path_items(spec: &str) -> Vec<(String, PathItem)> {
    let mut items: Vec<(String, PathItem)> = Vec::new();
    let mut in_paths = false;
    for line in spec.lines() {
        if !in_paths {
            in_paths = line == "paths:";
            continue;
        }
        // The next top-level key ends `paths:`.
        if !line.is_empty() && !line.starts_with(' ') && !line.starts_with('#') {
            break;
        }
        // `^  /[^:]*:$`
        if let Some(key) = line.strip_prefix("  /").and_then(|l| l.strip_suffix(':'))
            && !key.contains(':')
        {
            items.push((format!("/{key}"), PathItem::default()));
            continue;
        }
        let Some((_, item)) = items.last_mut() else {
            continue;
        };
        if let Some(method) = line.strip_prefix("    ").and_then(|l| l.strip_suffix(':'))
            && METHODS.contains(&method)
        {
            item.methods.insert(method.to_string());
        }
        item.lines.push(line.to_string());
    }
    items
}

/// Whether a path item's block declares the path parameter `id` (at the path-item level or on
/// an operation), by reference to `components.parameters.id` or inline.
fn declares_id(item: &PathItem) -> bool {
    let has = |want: &str| item.lines.iter().any(|l| l.trim() == want);
    has("- $ref: '#/components/parameters/id'") || (has("- name: id") && has("in: path"))
}

/// The lines of `components.parameters.id`.
fn id_parameter(spec: &str) -> Vec<&str> {
    spec.lines()
        .skip_while(|l| *l != "components:")
        .skip_while(|l| *l != "  parameters:")
        .skip(1)
        .skip_while(|l| *l != "    id:")
        .skip(1)
        .take_while(|l| l.starts_with("      ") || l.is_empty())
        .collect()
}

#[test]
fn openapi_is_utf8_openapi_3_1() {
    let spec = spec();
    assert!(
        spec.starts_with("openapi: 3.1"),
        "openapi.yaml must begin with `openapi: 3.1`: {:?}",
        spec.lines().next()
    );
    // YAML forbids tabs in indentation; a stray one would make the line scan lie.
    assert!(!spec.contains('\t'), "openapi.yaml contains a tab");
}

#[test]
fn openapi_paths_and_methods_match_the_router() {
    let spec = spec();
    let items = path_items(&spec);

    let mut documented: BTreeMap<&str, &BTreeSet<String>> = BTreeMap::new();
    for (path, item) in &items {
        assert!(
            documented.insert(path, &item.methods).is_none(),
            "{path} is documented twice"
        );
    }
    let routed: BTreeMap<&str, BTreeSet<String>> = ROUTES
        .iter()
        .map(|(path, methods)| (*path, methods.iter().map(|m| m.to_string()).collect()))
        .collect();
    assert_eq!(ROUTES.len(), routed.len(), "ROUTES lists a path twice");

    let documented_paths: BTreeSet<&str> = documented.keys().copied().collect();
    let routed_paths: BTreeSet<&str> = routed.keys().copied().collect();
    assert_eq!(
        documented_paths,
        routed_paths,
        "openapi.yaml paths vs the router's (documented only: {:?}; routed only: {:?})",
        documented_paths
            .difference(&routed_paths)
            .collect::<Vec<_>>(),
        routed_paths
            .difference(&documented_paths)
            .collect::<Vec<_>>(),
    );
    for (path, methods) in &routed {
        assert_eq!(
            documented[path], methods,
            "{path}: documented methods vs routed"
        );
    }
    for root in ROOT_ROUTES {
        assert!(routed.contains_key(root), "{root} is in ROUTES");
    }
}

#[test]
fn the_console_routes_stay_out_of_the_contract() {
    let documented: Vec<String> = path_items(&spec()).into_iter().map(|(p, _)| p).collect();
    for route in HTML_ROUTES {
        assert!(
            !documented.iter().any(|p| p == route),
            "{route} is HTML, not API"
        );
        assert!(
            !ROUTES.iter().any(|(p, _)| p == route),
            "{route} is HTML, not API"
        );
    }
}

#[test]
fn every_id_path_declares_the_id_parameter() {
    let spec = spec();
    let items = path_items(&spec);
    let with_id: Vec<&(String, PathItem)> =
        items.iter().filter(|(p, _)| p.contains("{id}")).collect();
    assert!(!with_id.is_empty(), "no path with {{id}} found");
    for (path, item) in with_id {
        assert!(
            declares_id(item),
            "{path} does not declare its `id` path parameter"
        );
    }
    // The shared definition is a required path parameter named `id`.
    let id = id_parameter(&spec);
    for want in ["name: id", "in: path", "required: true"] {
        assert!(
            id.iter().any(|l| l.trim() == want),
            "components.parameters.id lacks `{want}`: {id:?}"
        );
    }
}

async fn every_documented_operation_is_routed_and_the_contract_is_served(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (path, methods) in ROUTES {
        let concrete = path
            .replace("{id}", "00000000-0000-7000-8000-000000000000")
            .replace("{slug}", "acme")
            .replace("{key}", "department");
        let urls = if ROOT_ROUTES.contains(path) {
            vec![concrete]
        } else {
            vec![
                format!("/scim/v2{concrete}"),
                format!("/api/scim/v2{concrete}"),
            ]
        };
        for url in urls {
            for method in *methods {
                let method: Method = method.to_uppercase().parse().expect("method");
                let response = app
                    .client
                    .request(method.clone(), format!("{}{url}", app.address))
                    .bearer_auth(&app.token)
                    .header("content-type", "application/scim+json")
                    .body("{}")
                    .send()
                    .await
                    .expect("send");
                let status = response.status();
                let body = response.text().await.expect("body");
                assert_ne!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {url} is routed"
                );
                assert!(
                    !body.contains("No such endpoint"),
                    "{method} {url} is routed: {body}"
                );
            }
        }
    }
    let served = app
        .client
        .get(format!("{}/openapi.yaml", app.address))
        .send()
        .await
        .expect("get");
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.text().await.expect("text"), spec());
}
