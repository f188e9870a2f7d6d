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
    the_organization_page_charts_its_activity_and_the_overview_marks_it_failing,
    the_change_log_page_filters_and_pages,
    a_resource_page_shows_its_attributes_and_its_history,
    keys_are_created_and_revoked_from_the_console_with_its_csrf_token,
    an_expired_session_opens_no_page,
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

/// The page at `path` as a signed-in browser gets it.
async fn page_html(address: &str, path: &str, session: &str) -> String {
    get(address, path, Some(session))
        .await
        .text()
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
    let overview = page_html(&app.address, "/admin", &session).await;
    assert!(overview.contains("href=\"/admin/orgs/acme\""), "{overview}");

    // Changes and rejected writes are recorded off the request path or behind the log's
    // watermark: wait for both to show.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let html = loop {
        let html = page_html(&app.address, "/admin/orgs/acme", &session).await;
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

/// Signs in with a new admin key: the session cookie's value and the session's CSRF token.
async fn signed_in(app: &TestApp) -> (String, String) {
    let token = admin_key(app).await;
    let (_, cookie) = sign_in(&app.address, &token, &[]).await;
    let session = cookie_value(&cookie.expect("a session cookie"));
    let html = page_html(&app.address, "/admin", &session).await;
    (session, form_csrf(&html))
}

/// The page at `path`, once `ready` holds for it or a minute has passed (change-log entries
/// show behind the log's watermark, rejected writes are recorded off the request path).
async fn page_when(
    app: &TestApp,
    session: &str,
    path: &str,
    ready: impl Fn(&str) -> bool,
) -> (StatusCode, String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let response = get(&app.address, path, Some(session)).await;
        let status = response.status();
        let html = response.text().await.unwrap();
        if ready(&html) || std::time::Instant::now() > deadline {
            return (status, html);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends a SCIM request as an IdP would (its own User-Agent); the status.
async fn idp(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> StatusCode {
    let mut request = browser()
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(&app.token)
        .header("user-agent", "Okta SCIM Client 1.0");
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap().status()
}

async fn the_organization_page_charts_its_activity_and_the_overview_marks_it_failing(
    backend: Backend,
) {
    let settings = scimd::config::Settings {
        rate_limit: scimd::ratelimit::RateLimit::per_minute(6),
        ..TestApp::settings()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    let (session, _) = signed_in(&app).await;
    let post = reqwest::Method::POST;
    for name in ["ada", "grace"] {
        let body = json!({"userName": format!("{name}@example.com")});
        assert_eq!(
            idp(&app, post.clone(), "/scim/v2/Users", Some(body)).await,
            StatusCode::CREATED
        );
    }
    for _ in 0..3 {
        let body = json!({"userName": 5});
        assert_eq!(
            idp(&app, post.clone(), "/scim/v2/Users", Some(body)).await,
            StatusCode::BAD_REQUEST
        );
    }
    // The key's sixth request passes; the seventh is over its limit.
    let statuses = [
        idp(&app, reqwest::Method::GET, "/scim/v2/Users", None).await,
        idp(&app, reqwest::Method::GET, "/scim/v2/Users", None).await,
    ];
    assert_eq!(statuses, [StatusCode::OK, StatusCode::TOO_MANY_REQUESTS]);

    // Three of five writes refused in the last hour: failing.
    let overview = page_html(&app.address, "/admin", &session).await;
    assert!(overview.contains("<tr class=\"failing\">"), "{overview}");
    assert!(
        overview.contains("3 of 5 writes rejected in the last hour"),
        "{overview}"
    );
    assert!(overview.contains("<svg class=\"spark\""), "{overview}");
    assert!(
        overview.contains("changes in the last 24 hours: 2"),
        "{overview}"
    );

    let html = page_html(&app.address, "/admin/orgs/acme", &session).await;
    // This hour's bars in both charts of the day and of the month, named in their titles.
    assert_eq!(html.matches(": create 2</title>").count(), 2, "{html}");
    assert_eq!(
        html.matches(": invalidValue 3, 429 rate limit 1</title>")
            .count(),
        2,
        "{html}"
    );
    assert!(
        html.contains("Changes per hour, last 24 hours (UTC) — 2 in all"),
        "{html}"
    );

    // Written to the database, the counts read back the same (not twice).
    app.store.store.flush_activity().await.unwrap();
    let again = page_html(&app.address, "/admin/orgs/acme", &session).await;
    assert_eq!(again.matches(": create 2</title>").count(), 2, "{again}");
    let quiet = app.other_org("quiet").await;
    assert!(!quiet.is_empty());
    let overview = page_html(&app.address, "/admin", &session).await;
    assert!(
        overview.contains("href=\"/admin/orgs/quiet\""),
        "{overview}"
    );
    assert_eq!(
        overview.matches("<tr class=\"failing\">").count(),
        1,
        "{overview}"
    );
}

/// How many change-log rows a page lists (each links to its resource).
fn rows(html: &str) -> usize {
    html.matches("/resources/").count()
}

async fn the_change_log_page_filters_and_pages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (session, _) = signed_in(&app).await;
    let operations: Vec<serde_json::Value> = (0..120)
        .map(|i| {
            json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"),
            "data": {"userName": format!("u{i}@example.com")}})
        })
        .collect();
    let bulk = app
        .post(
            "/scim/v2/Bulk",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": operations}),
        )
        .await;
    assert_eq!(bulk.status, StatusCode::OK);
    let ada = app
        .create_user(json!({"userName": "ada@example.com"}))
        .await;
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": "Engineer"}]});
    let path = format!("/scim/v2/Users/{ada}");
    assert_eq!(
        app.request(reqwest::Method::PATCH, &path, Some(patch))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.post("/scim/v2/Users", json!({"userName": 7}))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    let (status, first) = page_when(&app, &session, "/admin/orgs/acme/changes", |h| {
        h.contains("<td>patch</td>")
    })
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rows(&first), 100, "{first}");
    // Newest first: Ada's patch heads the page.
    let first_row = &first[first.find("<tbody>").unwrap()..];
    assert!(
        first_row[..first_row.find("</tr>").unwrap()].contains("<td>patch</td>"),
        "{first}"
    );
    let older = first
        .split("href=\"")
        .find(|s| s.contains("before="))
        .map(|s| s[..s.find('"').unwrap()].replace("&amp;", "&"))
        .expect("a link to older entries");
    let second = page_html(&app.address, &older, &session).await;
    assert_eq!(rows(&second), 22, "{second}");
    assert!(
        !second.contains("before="),
        "the last page links to nothing older"
    );

    let patches = page_html(
        &app.address,
        "/admin/orgs/acme/changes?operation=patch&since=1h",
        &session,
    )
    .await;
    assert_eq!(rows(&patches), 1, "{patches}");
    let of_ada = page_html(
        &app.address,
        &format!("/admin/orgs/acme/changes?resource={ada}"),
        &session,
    )
    .await;
    assert_eq!(rows(&of_ada), 2, "{of_ada}");
    let (_, failed) = page_when(&app, &session, "/admin/orgs/acme/changes?failed=1", |h| {
        h.contains("400 invalidValue")
    })
    .await;
    assert!(failed.contains("POST /scim/v2/Users"), "{failed}");
    assert_eq!(rows(&failed), 0);

    let bad = get(
        &app.address,
        "/admin/orgs/acme/changes?operation=drop",
        Some(&session),
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().await.unwrap().contains("operation"));
    let unsigned = get(&app.address, "/admin/orgs/acme/changes", None).await;
    assert_eq!(unsigned.status(), StatusCode::SEE_OTHER);
}

async fn a_resource_page_shows_its_attributes_and_its_history(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (session, _) = signed_in(&app).await;
    let ada = app
        .create_user(json!({"userName": "ada@example.com", "password": "Secret-123-abc"}))
        .await;
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": "Engineer <lead>"}]});
    let status = idp(
        &app,
        reqwest::Method::PATCH,
        &format!("/scim/v2/Users/{ada}"),
        Some(patch),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let grace = app
        .create_user(json!({"userName": "grace@example.com"}))
        .await;
    let status = idp(
        &app,
        reqwest::Method::DELETE,
        &format!("/scim/v2/Users/{grace}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let path = format!("/admin/orgs/acme/resources/{ada}");
    let (status, html) = page_when(&app, &session, &path, |h| h.contains("Changed: title")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("ada@example.com"), "{html}");
    assert!(html.contains("Engineer &lt;lead&gt;"), "{html}");
    assert!(html.contains("Version 2"), "{html}");
    assert!(html.contains("Okta SCIM Client 1.0"), "{html}");
    assert!(html.contains("by test"), "{html}");
    assert!(
        html.contains("password"),
        "the create names the password as set: {html}"
    );
    assert!(!html.contains("Secret-123-abc"), "{html}");
    let patch_at = html.find("<strong>patch</strong>").expect("the patch");
    let create_at = html.find("<strong>create</strong>").expect("the create");
    assert!(patch_at < create_at, "newest first");

    let path = format!("/admin/orgs/acme/resources/{grace}");
    let (status, gone) = page_when(&app, &session, &path, |h| {
        h.contains("<strong>delete</strong>")
    })
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        gone.contains("Deleted: only its history remains."),
        "{gone}"
    );

    let unknown = get(
        &app.address,
        "/admin/orgs/acme/resources/01a23d1e-bab9-72de-8c1f-5cd24712233a",
        Some(&session),
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    // Another organization's user is not found through this one.
    app.other_org("globex").await;
    let elsewhere = get(
        &app.address,
        &format!("/admin/orgs/globex/resources/{ada}"),
        Some(&session),
    )
    .await;
    assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND);
}

async fn keys_are_created_and_revoked_from_the_console_with_its_csrf_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (session, csrf) = signed_in(&app).await;
    let post = |path: &str, form: Vec<(&'static str, String)>| {
        browser()
            .post(format!("{}{path}", app.address))
            .header("cookie", format!("scimd_console={session}"))
            .form(&form)
            .send()
    };
    let forged = post(
        "/admin/orgs/acme/keys",
        vec![("csrf", "forged".into()), ("name", "entra".into())],
    )
    .await
    .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let page = page_html(&app.address, "/admin/orgs/acme", &session).await;
    assert!(
        !page.contains("<td>entra</td>"),
        "a refused form creates nothing"
    );

    let created = post(
        "/admin/orgs/acme/keys",
        vec![("csrf", csrf.clone()), ("name", "entra".into())],
    )
    .await
    .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let html = created.text().await.unwrap();
    let at = html.find("<pre class=\"token\">").expect("the token") + 19;
    let token = html[at..at + html[at..].find('<').unwrap()].to_string();
    let users = app
        .request_as(&token, reqwest::Method::GET, "/scim/v2/Users", None)
        .await;
    assert_eq!(users.status, StatusCode::OK);
    let page = page_html(&app.address, "/admin/orgs/acme", &session).await;
    assert!(page.contains("<td>entra</td>"), "{page}");
    assert!(!page.contains(&token), "the token is shown once");

    let keys = app
        .request_as(
            &admin_key(&app).await,
            reqwest::Method::GET,
            "/admin/v1/orgs/acme/keys",
            None,
        )
        .await;
    let id = keys.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "entra")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/admin/orgs/acme/keys/{id}/revoke");
    let forged = post(&path, vec![("csrf", String::new())]).await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let revoked = post(&path, vec![("csrf", csrf.clone())]).await.unwrap();
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    let users = app
        .request_as(&token, reqwest::Method::GET, "/scim/v2/Users", None)
        .await;
    assert_eq!(users.status, StatusCode::UNAUTHORIZED);
    let actions = app
        .request_as(
            &admin_key(&app).await,
            reqwest::Method::GET,
            "/admin/v1/audit",
            None,
        )
        .await;
    let names: Vec<&str> = actions.body["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert!(
        names.contains(&"key.create") && names.contains(&"key.revoke"),
        "{names:?}"
    );
}

async fn an_expired_session_opens_no_page(backend: Backend) {
    use sqlx::Connection;
    let app = TestApp::spawn(backend).await;
    let (session, _) = signed_in(&app).await;
    assert_eq!(
        get(&app.address, "/admin", Some(&session)).await.status(),
        StatusCode::OK
    );
    // Eight hours later, as the database sees it.
    let expire = "update console_sessions set expires_at = 1";
    match backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
                .await
                .unwrap();
            sqlx::query(expire).execute(&mut conn).await.unwrap();
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&app.database_url)
                .await
                .unwrap();
            sqlx::query(expire).execute(&mut conn).await.unwrap();
        }
    }
    for path in ["/admin", "/admin/orgs/acme", "/admin/orgs/acme/changes"] {
        let response = get(&app.address, path, Some(&session)).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(response.headers()["location"], "/admin/sign-in");
    }
}
