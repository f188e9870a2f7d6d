//! The operator console (`/admin`) as a browser sees it: sign-in with an admin key only, the
//! session cookie's attributes (and `Secure` only as the trusted proxies say), CSRF tokens,
//! the security headers, the overview, sign-out, and a session served by a second process.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Backend, SECRET, TestApp};

backend_tests!(
    only_an_admin_key_signs_in_and_the_cookie_is_strict,
    the_overview_lists_organizations_and_sign_out_ends_the_session,
    every_console_answer_forbids_framing_caching_and_outside_content,
    a_session_lives_in_the_database_and_ends_with_its_key,
    the_organization_page_shows_its_idps_streams_changes_and_rejections,
);

/// A browser that does not follow redirects, so each answer can be looked at.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `Set-Cookie` header setting `name`, if any.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

/// The value a `Set-Cookie` header sets.
fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string()
}

/// The value of the hidden `csrf` input of a page.
fn form_csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf input") + 19;
    html[at..at + html[at..].find('"').unwrap()].to_string()
}

/// Signs in with `key` through `address`; the answer's status and the session cookie.
async fn sign_in(
    address: &str,
    key: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Option<String>) {
    let client = browser();
    let mut form = client.get(format!("{address}/admin/sign-in"));
    for (name, value) in headers {
        form = form.header(*name, *value);
    }
    let form = form.send().await.unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let sign_in_cookie = set_cookie(form.headers(), "scimd_console_sign_in").expect("csrf cookie");
    let csrf = form_csrf(&form.text().await.unwrap());
    assert_eq!(cookie_value(&sign_in_cookie), csrf);
    let mut post = client
        .post(format!("{address}/admin/sign-in"))
        .header("cookie", format!("scimd_console_sign_in={csrf}"))
        .form(&[("key", key), ("csrf", csrf.as_str())]);
    for (name, value) in headers {
        post = post.header(*name, *value);
    }
    let answer = post.send().await.unwrap();
    (
        answer.status(),
        set_cookie(answer.headers(), "scimd_console"),
    )
}

async fn admin_key(app: &TestApp) -> String {
    scimd::app::create_admin_key(&app.store, Some("console".into()), None)
        .await
        .unwrap()
}

async fn get(address: &str, path: &str, session: Option<&str>) -> reqwest::Response {
    let mut request = browser().get(format!("{address}{path}"));
    if let Some(session) = session {
        request = request.header("cookie", format!("scimd_console={session}"));
    }
    request.send().await.unwrap()
}

async fn only_an_admin_key_signs_in_and_the_cookie_is_strict(backend: Backend) {
    let settings = scimd::config::Settings {
        trusted_proxies: "10.0.0.0/8".parse().unwrap(),
        ..TestApp::settings()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    // An organization key, a personal token and nonsense do not open the console.
    let personal = app.key("acme", true).await;
    for key in [app.token.as_str(), personal.as_str(), "not-a-key"] {
        let (status, cookie) = sign_in(&app.address, key, &[]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(cookie.is_none());
    }
    // A sign-in without the form's token is refused.
    let token = admin_key(&app).await;
    let forged = browser()
        .post(format!("{}/admin/sign-in", app.address))
        .form(&[("key", token.as_str()), ("csrf", "guess")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(forged.headers(), "scimd_console").is_none());

    let (status, cookie) = sign_in(&app.address, &token, &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = cookie.expect("session cookie");
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/admin",
        "Max-Age=28800",
    ] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    // Plain http: not Secure. A client's own X-Forwarded-Proto is not believed (the test's
    // peer, 127.0.0.1, is not a trusted proxy here).
    assert!(!cookie.contains("Secure"), "{cookie}");
    let (_, forwarded) = sign_in(&app.address, &token, &[("x-forwarded-proto", "https")]).await;
    assert!(!forwarded.unwrap().contains("Secure"));

    // Behind a trusted proxy that says the client came over https: Secure.
    let settings = scimd::config::Settings {
        trusted_proxies: "127.0.0.1".parse().unwrap(),
        ..TestApp::settings()
    };
    let proxied = TestApp::spawn_with(backend, settings).await;
    let token = admin_key(&proxied).await;
    let (status, cookie) =
        sign_in(&proxied.address, &token, &[("x-forwarded-proto", "https")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(cookie.unwrap().contains("; Secure"));
}

async fn the_overview_lists_organizations_and_sign_out_ends_the_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user(json!({"userName": "ada@example.com"}))
        .await;
    app.other_org("beta").await;
    let token = admin_key(&app).await;
    let unsigned = get(&app.address, "/admin", None).await;
    assert_eq!(unsigned.status(), StatusCode::SEE_OTHER);
    assert_eq!(unsigned.headers()["location"], "/admin/sign-in");

    let (_, cookie) = sign_in(&app.address, &token, &[]).await;
    let session = cookie_value(&cookie.unwrap());
    let overview = get(&app.address, "/admin", Some(&session)).await;
    assert_eq!(overview.status(), StatusCode::OK);
    assert_eq!(
        overview.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let html = overview.text().await.unwrap();
    assert!(
        html.contains(">acme</a></td>") && html.contains(">beta</a></td>"),
        "{html}"
    );
    assert!(
        html.contains("<td class=\"n\">1</td>"),
        "acme's one user: {html}"
    );

    // Sign-out needs the session's CSRF token.
    let csrf = form_csrf(&html);
    let forged = browser()
        .post(format!("{}/admin/sign-out", app.address))
        .header("cookie", format!("scimd_console={session}"))
        .form(&[("csrf", "guess")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        get(&app.address, "/admin", Some(&session)).await.status(),
        StatusCode::OK
    );
    let out = browser()
        .post(format!("{}/admin/sign-out", app.address))
        .header("cookie", format!("scimd_console={session}"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let cleared = set_cookie(out.headers(), "scimd_console").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let after = get(&app.address, "/admin", Some(&session)).await;
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
}

async fn every_console_answer_forbids_framing_caching_and_outside_content(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in ["/admin", "/admin/sign-in", "/admin/console.css"] {
        let answer = get(&app.address, path, None).await;
        let headers = answer.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["cache-control"], "no-store", "{path}");
    }
    let css = get(&app.address, "/admin/console.css", None).await;
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    // The page links only what scimd serves itself.
    let page = get(&app.address, "/admin/sign-in", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );
    assert!(!page.contains("<script"), "{page}");
}

async fn a_session_lives_in_the_database_and_ends_with_its_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = admin_key(&app).await;
    let (_, cookie) = sign_in(&app.address, &token, &[]).await;
    let session = cookie_value(&cookie.unwrap());

    // A second process on the same database serves the session.
    let config = scimd::config::StoreConfig {
        database_url: app.database_url.clone(),
        jwt_secret: Some(SECRET.to_string()),
    };
    let second = scimd::app::open_with(&config, Duration::ZERO, &Default::default())
        .await
        .unwrap();
    let state = scimd::http::AppState::new(
        second.store.clone(),
        second.auth.clone(),
        TestApp::settings(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(scimd::http::serve(listener, state, std::future::pending()));
    assert_eq!(
        get(&address, "/admin", Some(&session)).await.status(),
        StatusCode::OK
    );

    // Revoking the admin key ends its sessions.
    let keys = scimd::app::list_admin_keys(&app.store).await.unwrap();
    scimd::app::revoke_admin_key(&app.store, &keys[0].id.to_string())
        .await
        .unwrap();
    assert_eq!(
        get(&app.address, "/admin", Some(&session)).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        get(&address, "/admin", Some(&session)).await.status(),
        StatusCode::SEE_OTHER
    );
}

async fn the_organization_page_shows_its_idps_streams_changes_and_rejections(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.define_attribute("cost_center").await;
    // An IdP's traffic: a create, a refused write, both with its User-Agent.
    let idp = browser();
    let created = idp
        .post(format!("{}/scim/v2/Users", app.address))
        .bearer_auth(&app.token)
        .header("user-agent", "Okta SCIM Client <1.0>")
        .json(&json!({"userName": "ada@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let refused = idp
        .post(format!("{}/scim/v2/Users", app.address))
        .bearer_auth(&app.token)
        .header("user-agent", "Okta SCIM Client <1.0>")
        .json(&json!({"userName": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    scimd::app::create_stream(
        &app.store,
        &scimd::app::StreamRequest {
            org: "acme".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();

    let token = admin_key(&app).await;
    let (_, cookie) = sign_in(&app.address, &token, &[]).await;
    let session = cookie_value(&cookie.unwrap());
    let overview = get(&app.address, "/admin", Some(&session))
        .await
        .text()
        .await
        .unwrap();
    assert!(overview.contains("href=\"/admin/orgs/acme\""), "{overview}");

    // Changes and rejected writes are recorded off the request path or behind the log's
    // watermark: wait for both to show.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let html = loop {
        let html = get(&app.address, "/admin/orgs/acme", Some(&session))
            .await
            .text()
            .await
            .unwrap();
        if (html.contains("<td>create</td>") && html.contains("400 invalidValue"))
            || std::time::Instant::now() > deadline
        {
            break html;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The IdP's key, its User-Agent escaped, the stream, the attribute, the change and the
    // rejection.
    assert!(html.contains("<td>test</td>"), "{html}");
    assert!(html.contains("Okta SCIM Client &lt;1.0&gt;"), "{html}");
    assert!(!html.contains("Okta SCIM Client <1.0>"), "{html}");
    assert!(html.contains("<td>poll</td>"), "{html}");
    assert!(html.contains("cost_center"), "{html}");
    assert!(html.contains("<td>create</td>"), "{html}");
    assert!(html.contains("POST /scim/v2/Users"), "{html}");
    assert!(html.contains("400 invalidValue"), "{html}");

    let unknown = get(&app.address, "/admin/orgs/nowhere", Some(&session)).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let unsigned = get(&app.address, "/admin/orgs/acme", None).await;
    assert_eq!(unsigned.status(), StatusCode::SEE_OTHER);
}
