//! The contract and the router agree: every served path is in openapi.yaml and every path in
//! openapi.yaml is served, with the methods the router accepts.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp};

backend_tests!(every_documented_operation_is_routed_and_the_contract_is_served);

const SPEC: &str = include_str!("../../openapi.yaml");

/// The router's paths relative to the SCIM base (the lower-case aliases `/users…`, `/groups…`
/// are the same routes) and at the root. Must change with `src/http/mod.rs`.
const ROUTES: &[(&str, &[&str])] = &[
    ("/Users", &["get", "post"]),
    ("/Users/.search", &["post"]),
    ("/Users/{id}", &["get", "put", "patch", "delete"]),
    ("/Groups", &["get", "post"]),
    ("/Groups/.search", &["post"]),
    ("/Groups/{id}", &["get", "put", "patch", "delete"]),
    ("/.search", &["post"]),
    ("/ServiceProviderConfig", &["get"]),
    ("/ResourceTypes", &["get"]),
    ("/ResourceTypes/{id}", &["get"]),
    ("/Schemas", &["get"]),
    ("/Schemas/{id}", &["get"]),
    ("/healthz", &["get"]),
    ("/readyz", &["get"]),
    ("/metrics", &["get"]),
    ("/openapi.yaml", &["get"]),
];

/// (path, methods) as documented: path keys are two-space indented under `paths:`, methods
/// four-space indented under them.
fn documented() -> Vec<(String, BTreeSet<String>)> {
    let mut out: Vec<(String, BTreeSet<String>)> = Vec::new();
    let mut in_paths = false;
    for line in SPEC.lines() {
        if line == "paths:" {
            in_paths = true;
            continue;
        }
        if in_paths && !line.starts_with(' ') && !line.is_empty() {
            break;
        }
        if let Some(rest) = line.strip_prefix("  /") {
            let path = format!("/{}", rest.trim_end_matches(':'));
            out.push((path, BTreeSet::new()));
        } else if let Some(method) = line.strip_prefix("    ").and_then(|l| l.strip_suffix(':'))
            && ["get", "put", "post", "patch", "delete"].contains(&method)
            && let Some((_, methods)) = out.last_mut()
        {
            methods.insert(method.to_string());
        }
    }
    out
}

#[test]
fn openapi_paths_and_methods_match_the_router() {
    assert!(SPEC.starts_with("openapi: 3.1"), "OpenAPI 3.1");
    let documented = documented();
    let routed: Vec<(String, BTreeSet<String>)> = ROUTES
        .iter()
        .map(|(p, m)| (p.to_string(), m.iter().map(|s| s.to_string()).collect()))
        .collect();
    assert_eq!(documented, routed);
    for (path, _) in &documented {
        if path.contains("{id}") {
            let section = SPEC
                .split(&format!("\n  {path}:\n"))
                .nth(1)
                .expect("section");
            let section = section.split("\n  /").next().unwrap_or("");
            assert!(
                section.contains("#/components/parameters/id"),
                "{path} declares id"
            );
        }
    }
}

async fn every_documented_operation_is_routed_and_the_contract_is_served(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let root = ["/healthz", "/readyz", "/metrics", "/openapi.yaml"];
    for (path, methods) in ROUTES {
        let concrete = path.replace("{id}", "00000000-0000-7000-8000-000000000000");
        let url = if root.contains(path) {
            concrete.clone()
        } else {
            format!("/scim/v2{concrete}")
        };
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
    let served = app
        .client
        .get(format!("{}/openapi.yaml", app.address))
        .send()
        .await
        .expect("get");
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.text().await.expect("text"), SPEC);
}
