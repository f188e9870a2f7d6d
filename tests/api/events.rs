//! SCIM events (RFC 9967): SETs pushed to a receiver on 127.0.0.1 verify with the published
//! key and arrive in order per resource, also after the receiver was down and after the
//! server was killed; two processes on one Postgres deliver every event; a poll with `ack`
//! never returns an acknowledged event.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, ChildServer, TestApp, start_scimd};
use crate::{backend_tests, postgres_tests};
use scimd::app::StreamRequest;

postgres_tests!(two_processes_on_one_postgres_deliver_every_event);

backend_tests!(
    pushed_sets_verify_with_the_published_key_and_name_the_change,
    a_poll_with_ack_never_returns_an_acknowledged_event,
    a_receiver_down_for_thirty_seconds_gets_every_change_in_order_per_resource,
    no_event_of_an_acknowledged_write_is_lost_when_scimd_is_killed,
    a_receiver_refusing_a_set_gets_it_once_and_the_stream_goes_on,
);

/// What a receiver got: each SET as it arrived, with its Authorization header.
#[derive(Default)]
struct Received {
    sets: Vec<(String, Option<String>)>,
}

/// A push receiver on 127.0.0.1 that answers 202, or 503 while it is "down".
struct Receiver {
    url: String,
    received: Arc<Mutex<Received>>,
    down: Arc<AtomicBool>,
}

impl Receiver {
    async fn start() -> Receiver {
        let received = Arc::new(Mutex::new(Received::default()));
        let down = Arc::new(AtomicBool::new(false));
        let (r, d) = (received.clone(), down.clone());
        let handler = move |headers: HeaderMap, body: Bytes| {
            let (r, d) = (r.clone(), d.clone());
            async move {
                if d.load(Ordering::SeqCst) {
                    return AxumStatus::SERVICE_UNAVAILABLE;
                }
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let set = String::from_utf8_lossy(&body).to_string();
                r.lock().expect("received").sets.push((set, auth));
                AxumStatus::ACCEPTED
            }
        };
        let url =
            serve_receiver(axum::Router::new().route("/events", axum::routing::post(handler)))
                .await;
        Receiver {
            url,
            received,
            down,
        }
    }

    fn count(&self) -> usize {
        self.received.lock().expect("received").sets.len()
    }

    /// Waits until at least `n` SETs arrived (at most `seconds`), then returns their claims.
    async fn wait_for(&self, n: usize, seconds: u64) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        while self.count() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let received = self.received.lock().expect("received");
        received.sets.iter().map(|(set, _)| claims(set)).collect()
    }
}

/// Serves `router` on 127.0.0.1; the URL of its `/events`.
async fn serve_receiver(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/events", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// The claims of a SET, unverified (verification is tested on its own).
fn claims(set: &str) -> Value {
    use base64::Engine;
    let payload = set.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("claims")
}

async fn push_stream(app: &TestApp, url: &str, full: bool, auth: Option<&str>) -> String {
    let request = StreamRequest {
        org: app.org.clone(),
        push: Some(url.to_string()),
        events: None,
        full,
        auth_header: auth.map(str::to_string),
    };
    let (stream, _) = scimd::app::create_stream(&app.store, &request)
        .await
        .expect("create stream");
    stream.id.to_string()
}

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

async fn pushed_sets_verify_with_the_published_key_and_name_the_change(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    push_stream(&app, &receiver.url, false, Some("Bearer receiver-secret")).await;
    let id = app
        .create_user(json!({"userName": "ada@example.com", "externalId": "okta-1"}))
        .await;
    let path = format!("/scim/v2/Users/{id}");
    let deactivate = json!({"schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "active", "value": false}]});
    let patched = app.request(Method::PATCH, &path, Some(deactivate)).await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(
        app.request(Method::DELETE, &path, None).await.status,
        StatusCode::NO_CONTENT
    );
    // Long: a slow test elsewhere in the cluster can hold the log's watermark back.
    receiver.wait_for(3, 180).await;

    let jwks: JwkSet = app
        .client
        .get(format!("{}/events/jwks.json", app.address))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("a JWK set");
    let sets: Vec<(String, Option<String>)> = receiver.received.lock().expect("r").sets.clone();
    assert_eq!(sets.len(), 3);
    let mut verified = Vec::new();
    for (set, auth) in &sets {
        assert_eq!(auth.as_deref(), Some("Bearer receiver-secret"));
        let header = jsonwebtoken::decode_header(set).expect("header");
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.typ.as_deref(), Some("secevent+jwt"));
        let kid = header.kid.expect("kid");
        let jwk = jwks.find(&kid).expect("the signing key is published");
        let key = DecodingKey::from_jwk(jwk).expect("key");
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&[receiver.url.as_str()]);
        validation.set_required_spec_claims(&["iss", "aud"]);
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<Value>(set, &key, &validation).expect("verifies");
        verified.push(data.claims);
    }
    let events: Vec<Vec<&str>> = verified
        .iter()
        .map(|c| {
            let mut names: Vec<&str> = c["events"]
                .as_object()
                .expect("events")
                .keys()
                .map(String::as_str)
                .collect();
            names.sort();
            names
        })
        .collect();
    assert_eq!(
        events,
        [
            vec!["urn:ietf:params:scim:event:prov:create:notice"],
            vec![
                "urn:ietf:params:scim:event:prov:deactivate",
                "urn:ietf:params:scim:event:prov:patch:notice",
            ],
            vec!["urn:ietf:params:scim:event:prov:delete"],
        ]
    );
    let first = &verified[0];
    assert_eq!(first["sub_id"]["format"], "scim");
    assert_eq!(first["sub_id"]["uri"], format!("/Users/{id}"));
    assert_eq!(first["sub_id"]["externalId"], "okta-1");
    assert_eq!(
        first["events"]["urn:ietf:params:scim:event:prov:create:notice"]["version"],
        "W/\"1\""
    );
    let patch = &verified[1]["events"]["urn:ietf:params:scim:event:prov:patch:notice"];
    assert_eq!(patch["attributes"], json!(["active"]));
    assert_eq!(patch["version"], "W/\"2\"");
    let jtis: HashSet<&str> = verified
        .iter()
        .map(|c| c["jti"].as_str().expect("jti"))
        .collect();
    assert_eq!(jtis.len(), 3, "a jti per SET");
    assert!(
        verified
            .iter()
            .all(|c| c["txn"].is_string() && c["toe"].is_number())
    );

    // The stream is listed with what it delivered, never with its secret.
    let streams = scimd::app::list_streams(&app.store, &app.org)
        .await
        .expect("list");
    let line = scimd::app::describe_stream(&streams[0]);
    assert!(line.contains("push") && line.contains("active"), "{line}");
    assert!(!line.contains("receiver-secret"), "{line}");
}

async fn poll(app: &TestApp, stream: &str, token: &str, body: Value) -> (StatusCode, Value) {
    let response = app
        .client
        .post(format!("{}/events/streams/{stream}/poll", app.address))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("poll");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn a_poll_with_ack_never_returns_an_acknowledged_event(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let request = StreamRequest {
        org: app.org.clone(),
        full: true,
        ..StreamRequest::default()
    };
    let (stream, token) = scimd::app::create_stream(&app.store, &request)
        .await
        .expect("create");
    let (stream, token) = (stream.id.to_string(), token.expect("a poll token"));
    // The stream's token, not an API key, opens the poll endpoint.
    let (status, _) = poll(&app, &stream, &app.token, json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    for i in 0..5 {
        app.create_user(json!({"userName": format!("u{i}@example.com"), "password": "Secret-123"}))
            .await;
    }
    let mut seen = Vec::new();
    // Until all five are visible (unacknowledged, a poll returns them again). Long: a slow
    // test elsewhere in the cluster can hold the log's watermark back, and the checks below
    // count on the fourth and fifth.
    let deadline = Instant::now() + Duration::from_secs(180);
    while Instant::now() < deadline {
        let (status, body) = poll(
            &app,
            &stream,
            &token,
            json!({"maxEvents": 10, "returnImmediately": true}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["sets"].as_object().map(serde_json::Map::len) == Some(5) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, body) = poll(
        &app,
        &stream,
        &token,
        json!({"maxEvents": 3, "returnImmediately": true}),
    )
    .await;
    let sets = body["sets"].as_object().cloned().unwrap_or_default();
    assert_eq!(sets.len(), 3, "maxEvents bounds a poll");
    let first_three: Vec<String> = sets.keys().cloned().collect();
    let full = claims(sets.values().next().and_then(Value::as_str).expect("a SET"));
    let data = &full["events"]["urn:ietf:params:scim:event:prov:create:full"]["data"];
    assert!(data["userName"].is_string(), "{full}");
    assert!(
        !full.to_string().contains("Secret-123"),
        "a password in a SET: {full}"
    );
    // Unacknowledged, they come back; acknowledged, never again.
    let (_, again) = poll(
        &app,
        &stream,
        &token,
        json!({"maxEvents": 3, "returnImmediately": true}),
    )
    .await;
    let again: Vec<String> = again["sets"]
        .as_object()
        .expect("sets")
        .keys()
        .cloned()
        .collect();
    assert_eq!(again, first_three);
    // Acknowledge the second one only, out of order, then the rest of the first three.
    let (_, body) = poll(
        &app,
        &stream,
        &token,
        json!({"ack": [first_three[1]], "maxEvents": 10, "returnImmediately": true}),
    )
    .await;
    let keys: Vec<String> = body["sets"]
        .as_object()
        .expect("sets")
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys.len(), 4);
    assert!(
        !keys.contains(&first_three[1]),
        "an acknowledged SET came back"
    );
    let (_, body) = poll(
        &app,
        &stream,
        &token,
        json!({"ack": [first_three[0], first_three[2]], "maxEvents": 10,
               "returnImmediately": true}),
    )
    .await;
    let rest: Vec<String> = body["sets"]
        .as_object()
        .expect("sets")
        .keys()
        .cloned()
        .collect();
    assert_eq!(rest.len(), 2);
    seen.extend(first_three.clone());
    assert!(rest.iter().all(|k| !seen.contains(k)), "{rest:?}");
    let (_, body) = poll(
        &app,
        &stream,
        &token,
        json!({"ack": rest, "returnImmediately": true}),
    )
    .await;
    assert_eq!(body["sets"], json!({}));
    assert_eq!(body["moreAvailable"], false);
    let streams = scimd::app::list_streams(&app.store, &app.org)
        .await
        .expect("list");
    assert_eq!(streams[0].delivered, 5);
}

async fn a_receiver_down_for_thirty_seconds_gets_every_change_in_order_per_resource(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    push_stream(&app, &receiver.url, false, None).await;
    receiver.down.store(true, Ordering::SeqCst);
    let started = Instant::now();
    // 100 users, 49 PATCHes each: 5,000 changes while the receiver answers 503.
    let mut ids = Vec::new();
    for i in 0..100 {
        ids.push(
            app.create_user(json!({"userName": format!("u{i}@example.com")}))
                .await,
        );
    }
    let app = Arc::new(app);
    let mut writers = Vec::new();
    for chunk in ids.chunks(25).map(<[String]>::to_vec) {
        let app = app.clone();
        writers.push(tokio::spawn(async move {
            for round in 0..49 {
                for id in &chunk {
                    let body = json!({"schemas": [PATCH_OP], "Operations":
                        [{"op": "replace", "path": "title", "value": format!("r{round}")}]});
                    let response = app
                        .request(Method::PATCH, &format!("/scim/v2/Users/{id}"), Some(body))
                        .await;
                    assert_eq!(response.status, StatusCode::OK);
                }
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    assert_eq!(receiver.count(), 0, "the receiver was down");
    let down_for = Duration::from_secs(30).saturating_sub(started.elapsed());
    tokio::time::sleep(down_for).await;
    receiver.down.store(false, Ordering::SeqCst);
    let sets = receiver.wait_for(5_000, 240).await;
    assert!(sets.len() >= 5_000, "{} of 5,000 arrived", sets.len());
    let mut versions: HashMap<String, Vec<i64>> = HashMap::new();
    for set in &sets {
        let uri = set["sub_id"]["uri"].as_str().expect("uri").to_string();
        let version = set["events"]
            .as_object()
            .and_then(|e| e.values().next())
            .and_then(|p| p["version"].as_str())
            .and_then(|v| v.trim_start_matches("W/").trim_matches('"').parse().ok())
            .expect("version");
        versions.entry(uri).or_default().push(version);
    }
    assert_eq!(versions.len(), 100);
    for (uri, versions) in versions {
        let mut deduplicated = versions.clone();
        deduplicated.dedup();
        let expected: Vec<i64> = (1..=50).collect();
        assert_eq!(deduplicated, expected, "{uri}: out of order or missing");
    }
}

/// A `scimd serve` child on a free port of 127.0.0.1, and its SCIM base URL.
async fn start(database_url: &str) -> (ChildServer, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let server = start_scimd(database_url, &listen).await;
    (server, format!("http://{listen}/scim/v2"))
}

/// Writes users through `base` until `stop`; the (id, version) pairs acknowledged.
fn write_load(
    base: String,
    token: String,
    stop: Arc<AtomicBool>,
    tag: &'static str,
) -> tokio::task::JoinHandle<Vec<(String, i64)>> {
    tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        let mut acknowledged = Vec::new();
        for i in 0.. {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let Ok(response) = client
                .post(format!("{base}/Users"))
                .bearer_auth(&token)
                .json(&json!({"userName": format!("{tag}-{i}@example.com")}))
                .send()
                .await
            else {
                break;
            };
            if response.status() != StatusCode::CREATED {
                break;
            }
            let Ok(body) = response.json::<Value>().await else {
                break;
            };
            acknowledged.push((body["id"].as_str().unwrap_or_default().to_string(), 1));
        }
        acknowledged
    })
}

/// Every acknowledged create has arrived at least once (waiting up to 180 s: a slow test
/// elsewhere in the cluster can hold the log's watermark back).
async fn all_arrive(receiver: &Receiver, acknowledged: &[(String, i64)]) {
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut missing: Vec<&String> = Vec::new();
    while Instant::now() < deadline {
        let arrived: HashSet<String> = receiver
            .received
            .lock()
            .expect("received")
            .sets
            .iter()
            .map(|(set, _)| {
                claims(set)["sub_id"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        missing = acknowledged
            .iter()
            .map(|(id, _)| id)
            .filter(|id| !arrived.contains(*id))
            .collect();
        if missing.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{} acknowledged creates never arrived, e.g. {:?}",
        missing.len(),
        missing.first()
    );
}

async fn no_event_of_an_acknowledged_write_is_lost_when_scimd_is_killed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    push_stream(&app, &receiver.url, false, None).await;
    let (server, base) = start(&app.database_url).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = write_load(base, app.token.clone(), stop.clone(), "k");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(server); // SIGKILL mid-delivery
    stop.store(true, Ordering::SeqCst);
    let acknowledged = load.await.expect("load");
    assert!(
        acknowledged.len() > 10,
        "the load ran ({})",
        acknowledged.len()
    );
    let (_restarted, _) = start(&app.database_url).await;
    all_arrive(&receiver, &acknowledged).await;
}

/// Two processes on one Postgres: every event is delivered, also after one of them is killed
/// (the other takes over its lease).
async fn two_processes_on_one_postgres_deliver_every_event() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let receiver = Receiver::start().await;
    push_stream(&app, &receiver.url, false, None).await;
    let (first, first_base) = start(&app.database_url).await;
    let (_second, second_base) = start(&app.database_url).await;
    let stop = Arc::new(AtomicBool::new(false));
    let a = write_load(first_base, app.token.clone(), stop.clone(), "a");
    let b = write_load(second_base, app.token.clone(), stop.clone(), "b");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(first); // whichever held the lease, delivery goes on
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::SeqCst);
    let mut acknowledged = a.await.expect("a");
    acknowledged.extend(b.await.expect("b"));
    assert!(
        acknowledged.len() > 10,
        "the load ran ({})",
        acknowledged.len()
    );
    all_arrive(&receiver, &acknowledged).await;
}

/// RFC 8935 §2.4: a `400` with an error object is the receiver's final answer for that SET:
/// it is not sent again and the SETs after it still arrive. The refusal here comes with a
/// long description, read in several pieces.
async fn a_receiver_refusing_a_set_gets_it_once_and_the_stream_goes_on(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let attempts: Arc<Mutex<Vec<Value>>> = Arc::default();
    let seen = attempts.clone();
    let handler = move |body: Bytes| {
        let seen = seen.clone();
        async move {
            let claims = claims(&String::from_utf8_lossy(&body));
            let refused = claims.to_string().contains("refused@example.com");
            seen.lock().expect("attempts").push(claims);
            if refused {
                let answer =
                    json!({"err": "invalid_request", "description": "x".repeat(256 * 1024)});
                (AxumStatus::BAD_REQUEST, answer.to_string())
            } else {
                (AxumStatus::ACCEPTED, String::new())
            }
        }
    };
    let url =
        serve_receiver(axum::Router::new().route("/events", axum::routing::post(handler))).await;
    // A full stream, so each SET names the user it is about.
    push_stream(&app, &url, true, None).await;

    app.create_user(json!({"userName": "refused@example.com"}))
        .await;
    app.create_user(json!({"userName": "accepted@example.com"}))
        .await;
    let deadline = Instant::now() + Duration::from_secs(180);
    while attempts.lock().expect("attempts").len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Retries would come after 100 ms, 200 ms, ...: a second is room for several.
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Two resources: sent side by side, so in either order.
    let mut names: Vec<String> = attempts
        .lock()
        .expect("attempts")
        .iter()
        .map(|c| {
            let data = c["events"]["urn:ietf:params:scim:event:prov:create:full"]["data"].clone();
            data["userName"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["accepted@example.com", "refused@example.com"]);
}
