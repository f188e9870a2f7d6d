//! The two profiles (`SCIMD_PROFILE`): the reference's shape, and the SCIM interoperability
//! profile with strict RFC 7643 rendering and the draft's refusals; the profile a database's
//! derived columns follow; TLS termination and the conformance it allows to be announced.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::backend_tests;
use crate::helpers::{
    Backend, TestApp, TestResponse, assert_scim_error, filter_users, start_scimd_with,
};
use scimd::config::Settings;
use scimd::scim::interop::Profile;

backend_tests!(
    the_interop_profile_renders_only_what_is_stored_so_removals_show,
    the_interop_profile_refuses_what_the_draft_forbids_and_changes_nothing,
    the_reference_profile_keeps_the_reference_shape_and_leniency,
    a_change_of_profile_refolds_what_filters_compare,
    conformance_is_announced_only_in_the_interop_profile_over_tls,
    tls_is_served_in_version_1_3_and_plain_http_is_refused_on_its_port,
);

const UA: &str = "urn:omni:params:1.0:UserAttribute";
const OMNI: &str = "urn:omni:params:scim:schemas:extension:user:2.0";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

async fn spawn(backend: Backend, profile: Profile) -> TestApp {
    let settings = Settings {
        profile,
        ..TestApp::settings()
    };
    TestApp::spawn_with(backend, settings).await
}

async fn patch(app: &TestApp, path: &str, operations: Value) -> TestResponse {
    let body = json!({"schemas": [PATCH_OP], "Operations": operations});
    app.request(Method::PATCH, path, Some(body)).await
}

/// The ids of the users a filter selects.
async fn found(app: &TestApp, filter: &str) -> Vec<String> {
    let body = filter_users(app, filter).await;
    body["Resources"]
        .as_array()
        .map(|users| {
            users
                .iter()
                .map(|u| u["id"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// A server in `profile` with user attribute `good_blob`, and a user created with its
/// userName alone: the server, the user's id and path.
async fn bare_user(backend: Backend, profile: Profile) -> (TestApp, String, String) {
    let app = spawn(backend, profile).await;
    app.define_attribute("good_blob").await;
    let id = app
        .create_user(json!({"userName": "bjensen@example.com"}))
        .await;
    let path = format!("/scim/v2/Users/{id}");
    (app, id, path)
}

async fn the_interop_profile_renders_only_what_is_stored_so_removals_show(backend: Backend) {
    let (app, id, path) = bare_user(backend, Profile::Interop).await;
    let user = app.get(&path).await.body;
    for absent in ["active", "emails", UA, OMNI] {
        assert!(user.get(absent).is_none(), "{absent} shown: {user}");
    }
    assert_eq!(
        user["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User"])
    );
    // Filters agree with what is shown: no `active`, no fallback email.
    assert!(found(&app, "active pr").await.is_empty());
    assert!(found(&app, "active eq true").await.is_empty());
    assert_eq!(found(&app, "active ne true").await, [id.as_str()]);
    assert!(
        found(&app, r#"emails.value eq "bjensen@example.com""#)
            .await
            .is_empty()
    );

    let set = patch(
        &app,
        &path,
        json!([
            {"op": "add", "path": "active", "value": false},
            {"op": "add", "path": UA, "value": {"good_blob": "x"}},
        ]),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
    assert_eq!(set.body["active"], false);
    assert_eq!(set.body[UA], json!({"good_blob": "x"}));
    assert_eq!(found(&app, "active eq false").await, [id.as_str()]);
    assert_eq!(found(&app, "active pr").await, [id.as_str()]);

    // What a client removes is gone from the response and from every filter.
    let removed = patch(
        &app,
        &path,
        json!([
            {"op": "remove", "path": "active"},
            {"op": "remove", "path": UA},
        ]),
    )
    .await;
    assert_eq!(removed.status, StatusCode::OK, "{:?}", removed.body);
    for absent in ["active", UA] {
        assert!(
            removed.body.get(absent).is_none(),
            "{absent} still shown: {}",
            removed.body
        );
    }
    assert_eq!(app.get(&path).await.body, removed.body);
    assert!(found(&app, "active pr").await.is_empty());
    assert!(found(&app, "active eq false").await.is_empty());

    // A stored email is shown and found as in any profile.
    let email = patch(
        &app,
        &path,
        json!([{"op": "add", "path": "emails", "value": [{"value": "bj@example.com"}]}]),
    )
    .await;
    assert_eq!(email.body["emails"], json!([{"value": "bj@example.com"}]));
    assert_eq!(
        found(&app, r#"emails.value eq "BJ@example.com""#).await,
        [id.as_str()]
    );
    // Removed, the emails are gone: no fallback stands in for them.
    let removed = patch(&app, &path, json!([{"op": "remove", "path": "emails"}])).await;
    assert_eq!(removed.status, StatusCode::OK, "{:?}", removed.body);
    assert!(removed.body.get("emails").is_none(), "{}", removed.body);
    assert!(found(&app, "emails pr").await.is_empty());
}

async fn the_interop_profile_refuses_what_the_draft_forbids_and_changes_nothing(backend: Backend) {
    let app = spawn(backend, Profile::Interop).await;
    app.define_attribute("good_blob").await;
    let id = app
        .create_user(json!({"userName": "bjensen@example.com", "active": true,
            "emails": [{"type": "work", "value": "bj@example.com"}]}))
        .await;
    let path = format!("/scim/v2/Users/{id}");
    let before = app.get(&path).await.body;
    let refused = [
        (
            "a path-less operation",
            json!([{"op": "replace", "value": {"active": false}}]),
            "invalidSyntax",
        ),
        (
            "a replace of a whole filtered element",
            json!([{"op": "replace", "path": "emails[type eq \"work\"]",
                    "value": {"value": "other@example.com"}}]),
            "invalidPath",
        ),
        (
            "a schemas member inside an extension's value",
            json!([{"op": "add", "path": UA,
                    "value": {"schemas": [UA], "good_blob": "x"}}]),
            "invalidSyntax",
        ),
        (
            "an undefined user attribute",
            json!([{"op": "add", "path": format!("{UA}:nope"), "value": "x"}]),
            "invalidSyntax",
        ),
    ];
    for (name, operations, scim_type) in refused {
        let response = patch(&app, &path, operations).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{name}");
        assert_scim_error(&response, 400, Some(scim_type));
    }
    assert_eq!(
        app.get(&path).await.body,
        before,
        "a refusal changed nothing"
    );

    // A filtered path naming a sub-attribute is what the draft asks for.
    let sub = patch(
        &app,
        &path,
        json!([{"op": "replace", "path": "emails[type eq \"work\"].value",
                "value": "new@example.com"}]),
    )
    .await;
    assert_eq!(sub.status, StatusCode::OK, "{:?}", sub.body);
    assert_eq!(sub.body["emails"][0]["value"], "new@example.com");

    let body_refusals = [
        json!({"userName": "x@example.com", UA: {"schemas": [UA], "good_blob": "x"}}),
        json!({"userName": "x@example.com", UA: {"nope": "x"}}),
        json!({"userName": "x@example.com", "nickname2": "x"}),
    ];
    for body in body_refusals {
        let response = app.post("/scim/v2/Users", body.clone()).await;
        assert_scim_error(&response, 400, Some("invalidSyntax"));
    }
    assert_eq!(
        found(&app, r#"userName eq "x@example.com""#).await,
        Vec::<String>::new()
    );

    // Removing one member through a value filter stays allowed (how IdPs remove members).
    let group = app
        .post(
            "/scim/v2/Groups",
            json!({"displayName": "Admins", "members": [{"value": id}]}),
        )
        .await;
    assert_eq!(group.status, StatusCode::CREATED, "{:?}", group.body);
    let group_path = format!("/scim/v2/Groups/{}", group.body["id"].as_str().unwrap());
    let remove = patch(
        &app,
        &group_path,
        json!([{"op": "remove", "path": format!("members[value eq \"{id}\"]")}]),
    )
    .await;
    assert!(remove.status.is_success(), "{:?}", remove.body);
    let path_less = patch(
        &app,
        &group_path,
        json!([{"op": "replace", "value": {"displayName": "Ops"}}]),
    )
    .await;
    assert_scim_error(&path_less, 400, Some("invalidSyntax"));
    let group = app.get(&group_path).await.body;
    assert_eq!(group["displayName"], "Admins");
    assert_eq!(group["members"], json!([]));
}

async fn the_reference_profile_keeps_the_reference_shape_and_leniency(backend: Backend) {
    let (app, id, path) = bare_user(backend, Profile::Reference).await;
    let user = app.get(&path).await.body;
    assert_eq!(user["active"], true);
    assert_eq!(
        user["emails"],
        json!([{"primary": true, "value": "bjensen@example.com"}])
    );
    assert_eq!(user[UA], json!({}));
    assert_eq!(user[OMNI], json!({"lastLogin": null}));
    assert_eq!(found(&app, "active eq true").await, [id.as_str()]);
    assert_eq!(found(&app, "active pr").await, [id.as_str()]);
    assert!(found(&app, "active ne true").await.is_empty());

    // What Okta and Entra send: path-less operations, a schemas member naming the extension.
    let lenient = patch(
        &app,
        &path,
        json!([
            {"op": "replace", "value": {"active": false}},
            {"op": "add", "path": UA, "value": {"schemas": [UA], "good_blob": "x"}},
        ]),
    )
    .await;
    assert_eq!(lenient.status, StatusCode::OK, "{:?}", lenient.body);
    assert_eq!(lenient.body["active"], false);
    assert_eq!(lenient.body[UA], json!({"good_blob": "x"}));
    // An undefined user attribute is the reference's invalidValue.
    let undefined = patch(
        &app,
        &path,
        json!([{"op": "add", "path": format!("{UA}:nope"), "value": "x"}]),
    )
    .await;
    assert_scim_error(&undefined, 400, Some("invalidValue"));
    // `remove` of active shows the reference's default again, and filters agree.
    let removed = patch(&app, &path, json!([{"op": "remove", "path": "active"}])).await;
    assert_eq!(removed.body["active"], true);
    assert_eq!(found(&app, "active eq true").await, [id]);
}

async fn a_change_of_profile_refolds_what_filters_compare(backend: Backend) {
    let app = spawn(backend, Profile::Reference).await;
    let bare = app
        .create_user(json!({"userName": "bare@example.com"}))
        .await;
    let full = app
        .create_user(json!({"userName": "full@example.com", "active": true,
            "emails": [{"value": "full@example.com"}]}))
        .await;
    let store = &app.store.store;
    let mut both = vec![bare.clone(), full.clone()];
    both.sort();
    let mut active = found(&app, "active eq true").await;
    active.sort();
    assert_eq!(active, both);
    assert_eq!(
        found(&app, r#"emails.value eq "bare@example.com""#).await,
        [bare.as_str()]
    );

    // Served under the interop profile, the bare user has neither `active` nor an email.
    assert_eq!(
        store.adopt_profile(Profile::Interop).await.expect("adopt"),
        1
    );
    assert_eq!(found(&app, "active eq true").await, [full.as_str()]);
    assert!(
        found(&app, r#"emails.value eq "bare@example.com""#)
            .await
            .is_empty()
    );
    assert_eq!(
        found(&app, r#"emails.value eq "full@example.com""#).await,
        [full.as_str()]
    );
    // Adopting the same profile again touches nothing.
    assert_eq!(
        store.adopt_profile(Profile::Interop).await.expect("adopt"),
        0
    );
    // And back: the reference's defaults are what filters compare again.
    assert_eq!(
        store
            .adopt_profile(Profile::Reference)
            .await
            .expect("adopt"),
        1
    );
    let mut active = found(&app, "active eq true").await;
    active.sort();
    assert_eq!(active, both);
    assert_eq!(
        found(&app, r#"emails.value eq "bare@example.com""#).await,
        [bare]
    );
}

async fn conformance_is_announced_only_in_the_interop_profile_over_tls(backend: Backend) {
    let cases = [
        (Profile::Reference, false, false),
        (Profile::Reference, true, false),
        (Profile::Interop, false, false),
        (Profile::Interop, true, true),
    ];
    for (profile, tls, announced) in cases {
        let settings = Settings {
            profile,
            tls,
            ..TestApp::settings()
        };
        let app = TestApp::spawn_with(backend, settings).await;
        let config = app.get("/scim/v2/ServiceProviderConfig").await.body;
        assert_eq!(
            config["interopProfileConformant"],
            Value::Bool(announced),
            "{profile:?}, TLS {tls}"
        );
    }
}

async fn tls_is_served_in_version_1_3_and_plain_http_is_refused_on_its_port(backend: Backend) {
    // The test's own server prepares the database (org, key); TLS is the child's.
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let cert_pem = certified.cert.pem();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, &cert_pem).expect("write cert");
    std::fs::write(&key_path, certified.signing_key.serialize_pem()).expect("write key");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let _server = start_scimd_with(
        &app.database_url,
        &listen,
        &[
            ("SCIMD_TLS_CERT", cert_path.to_str().unwrap()),
            ("SCIMD_TLS_KEY", key_path.to_str().unwrap()),
            ("SCIMD_PROFILE", "interop"),
        ],
    )
    .await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).expect("root");
    let handshake = |versions: &'static [&'static rustls::SupportedProtocolVersion]| {
        let roots = roots.clone();
        let listen = listen.clone();
        async move {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_protocol_versions(versions)
                .expect("versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            let tcp = TcpStream::connect(&listen).await.expect("connect");
            let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
            connector.connect(name, tcp).await.expect("handshake")
        }
    };
    // A client offering both gets TLS 1.3, and HTTP over it.
    let mut tls = handshake(rustls::ALL_VERSIONS).await;
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // TLS 1.2 is offered too (the profile allows it).
    static TLS12_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
    let tls12 = handshake(TLS12_ONLY).await;
    assert_eq!(
        tls12.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(&listen).await.expect("connect");
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        plain.read_to_end(&mut reply),
    )
    .await
    .expect("the connection is closed");
    assert!(
        !reply.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert!(scimd::app::healthcheck(&listen).await.is_err());
    scimd::app::healthcheck_tls(&listen)
        .await
        .expect("the TLS health check");

    // Served over TLS in the interop profile, conformance is announced.
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .resolve("localhost", listen.parse().unwrap())
        .build()
        .unwrap();
    let config: Value = client
        .get(format!(
            "https://localhost:{port}/scim/v2/ServiceProviderConfig"
        ))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(config["interopProfileConformant"], true, "{config}");
}
