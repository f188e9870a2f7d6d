//! HTTP: application state, the router (SCIM endpoints under `/scim/v2` and `/api/scim/v2`),
//! its layers, and [`serve`], the seam that `main` and the black-box tests share.

mod admin;
mod bulk;
mod client_ip;
mod console;
mod context;
mod discovery;
mod envelope;
mod error;
mod events;
mod extract;
mod group_members;
mod list;
mod middleware;
mod ops;
mod org_gate;
mod preconditions;
mod resources;
mod search;
mod server;
pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::{Service, ServiceBuilder};

pub use error::{ApiError, ErrorReport, SCIM_CONTENT_TYPE, error_body};
pub use events::token_hash as poll_token_hash;
pub use org_gate::OrgGate;
pub use server::{Transport, serve_router};

use crate::audit::rejections::RejectionRecorder;
use crate::auth::Authenticator;
use crate::config::Settings;
use crate::events::Events;
use crate::ratelimit::{Leases, MemoryLimiter};
use crate::resources::{Groups, ResourceKind, Resources, Users};
use crate::store::Store;

/// Largest accepted request body (the 1 MiB; larger → 413).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Shared state of every request: one pointer, because each layer and extractor clones it
/// (a dozen reference counts per clone showed in the GET profile).
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// What [`AppState`] points at.
pub struct SharedState {
    pub store: Arc<dyn Store>,
    pub auth: Arc<Authenticator>,
    pub settings: Arc<Settings>,
    /// Per-IP limiter for failed authentication (in-process: it only blunts guessing).
    pub auth_failures: Arc<MemoryLimiter>,
    /// Rate-limit tokens this process has taken for a key and not spent yet.
    pub leases: Arc<Leases>,
    /// The one place a User or Group changes.
    pub resources: Resources,
    /// Requests of one organization running at once (`Settings::org_concurrency`).
    pub org_gate: Arc<OrgGate>,
    /// Bulk requests running at once in this process (`Settings::bulk_concurrency`).
    pub bulk_slots: Arc<tokio::sync::Semaphore>,
    /// Where refused write requests go to be recorded, off the request path.
    pub rejections: Arc<RejectionRecorder>,
    /// SCIM events: the signer and push delivery.
    pub events: Arc<Events>,
    /// The operations behind the admin API.
    pub admin: crate::admin::Admin,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, auth: Arc<Authenticator>, settings: Settings) -> AppState {
        crate::metrics::handle();
        let settings = Arc::new(settings);
        let admin = crate::admin::Admin::new(store.clone(), auth.clone());
        crate::admin::spawn_deletions(admin.clone());
        crate::audit::activity::spawn_flush(store.clone());
        AppState(Arc::new(SharedState {
            admin,
            resources: Resources::new(store.clone(), settings.clone()),
            events: Events::start(store.clone(), &settings),
            rejections: Arc::new(RejectionRecorder::start(
                store.clone(),
                settings.rejected_writes_per_key_per_minute,
            )),
            store,
            auth,
            org_gate: Arc::new(OrgGate::new(settings.org_concurrency)),
            bulk_slots: Arc::new(tokio::sync::Semaphore::new(
                settings
                    .bulk_concurrency
                    .clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
            )),
            settings,
            auth_failures: Arc::new(MemoryLimiter::default()),
            leases: Arc::new(Leases::default()),
        }))
    }
}

/// What the server serves: the router inside its layers, cloned for each request.
pub trait App:
    Service<Request<Body>, Response = Response, Error = Infallible, Future: Send + 'static>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> App for S where
    S: Service<Request<Body>, Response = Response, Error = Infallible, Future: Send + 'static>
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// The endpoints of one resource type (RFC 7644 §3.2) under `prefix`, at its endpoint as the
/// schema names it (`/Users`) and in lower case (`/users`, the reference's form).
fn resource_routes<K: ResourceKind>(prefix: &str) -> Router<AppState> {
    let mut router = Router::new();
    let endpoint = K::DEF.endpoint;
    for path in [endpoint.to_string(), endpoint.to_ascii_lowercase()] {
        let path = format!("{prefix}{path}");
        router = router
            .route(
                &path,
                get(resources::list::<K>).post(resources::create::<K>),
            )
            .route(&format!("{path}/.search"), post(resources::search::<K>))
            .route(
                &format!("{path}/{{id}}"),
                get(resources::get::<K>)
                    .put(resources::replace::<K>)
                    .patch(resources::patch::<K>)
                    .delete(resources::delete::<K>),
            );
    }
    router
}

/// `/GroupMembers`: memberships one by one (a new endpoint: no lower-case alias).
fn group_member_routes(prefix: &str) -> Router<AppState> {
    Router::new()
        .route(
            &format!("{prefix}/GroupMembers"),
            get(group_members::list).post(group_members::create),
        )
        .route(
            &format!("{prefix}/GroupMembers/{{id}}"),
            get(group_members::get).delete(group_members::delete),
        )
}

/// The SCIM endpoints (RFC 7644 §3.2) under `prefix`: written out in full rather than nested,
/// as a nested router is one more routing and boxed service per request.
fn scim_routes(state: &AppState, prefix: &str) -> Router<AppState> {
    let at = |path: &str| format!("{prefix}{path}");
    Router::new()
        .merge(resource_routes::<Users>(prefix))
        .merge(resource_routes::<Groups>(prefix))
        .merge(group_member_routes(prefix))
        .route(
            &at("/ServiceProviderConfig"),
            get(discovery::get_service_provider_config),
        )
        .route(&at("/ResourceTypes"), get(discovery::list_resource_types))
        .route(
            &at("/ResourceTypes/{id}"),
            get(discovery::get_resource_type),
        )
        .route(&at("/Schemas"), get(discovery::list_schemas))
        .route(&at("/Schemas/{id}"), get(discovery::get_schema))
        .route(&at("/.search"), post(search::search_all))
        .route(
            &at("/Bulk"),
            post(bulk::bulk).layer(DefaultBodyLimit::max(state.settings.bulk_max_payload_bytes)),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::authenticate,
        ))
}

/// The whole application: SCIM under `/scim/v2` and `/api/scim/v2` (the reference's server
/// URL ends in `/api`), `/metrics` and the operational endpoints, with request ids, tracing,
/// the body limit and a SCIM 404 fallback.
pub fn router(state: AppState) -> impl App {
    app_router(state, true)
}

/// [`router`] without `/metrics` (a 404 here), for when it is served on a listener of its
/// own (`SCIMD_METRICS_LISTEN`).
pub fn router_without_metrics(state: AppState) -> impl App {
    app_router(state, false)
}

/// Only `/metrics`, for its own listener.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(ops::metrics))
        .fallback(middleware::not_found)
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .with_state(state)
}

fn app_router(state: AppState, with_metrics: bool) -> impl App {
    let mut router = Router::new()
        .merge(scim_routes(&state, "/scim/v2"))
        .merge(scim_routes(&state, "/api/scim/v2"))
        .nest("/admin/v1", admin::routes(&state))
        .merge(console::routes())
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/openapi.yaml", get(ops::openapi))
        .route("/events/jwks.json", get(events::jwks))
        .route("/events/streams/{id}/poll", post(events::poll));
    if with_metrics {
        router = router.route("/metrics", get(ops::metrics));
    }
    let routes = router
        .fallback(middleware::not_found)
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .with_state(state.clone());
    // The layers wrap the router once, outside routing: given to `Router::layer`, each would
    // wrap every route in a boxed service of its own, cloned and dropped on every request.
    ServiceBuilder::new()
        .map_response(IntoResponse::into_response)
        .layer(axum::middleware::from_fn_with_state(
            state,
            envelope::envelope,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .service(routes)
}

/// Serves the application on `listener` until `shutdown` resolves, then drains in-flight
/// requests; the transport bounds (header and idle timeouts, connection cap) come from the
/// state's settings.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_tls(listener, state, None, shutdown).await
}

/// [`serve`], over TLS when given an acceptor (`SCIMD_TLS_CERT`).
pub async fn serve_tls(
    listener: TcpListener,
    state: AppState,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let transport = Transport::from_settings(&state.settings);
    serve_router(listener, router(state), transport, tls, shutdown).await
}
