use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use keyinfra_db::testing::TestDatabase;
use keyinfra_db::{Actor, PoolSettings, migrations};
use tower::ServiceExt;

async fn get(
    app: axum::Router,
    path: &str,
) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    let response = app
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn health_and_readiness_answer_when_the_database_is_current() {
    let tdb = TestDatabase::new().await;
    let app = crate::support::app(tdb.database().await, migrations::latest_version()).await;
    let (status, _, body) = get(app.router(), "/healthz").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, _, body) = get(app.router(), "/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["schema_version"], migrations::latest_version());
}

#[tokio::test]
async fn readiness_fails_with_problem_json_when_the_schema_is_behind() {
    let tdb = TestDatabase::new().await;
    let app = crate::support::app(tdb.database().await, migrations::latest_version() + 1).await;
    let (status, headers, body) = get(app.router(), "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert!(headers.contains_key(header::RETRY_AFTER));
    assert_eq!(body["code"], "schema_not_current");
}

#[tokio::test]
async fn an_exhausted_pool_gets_503_with_retry_after_instead_of_hanging() {
    let tdb = TestDatabase::new().await;
    let db = tdb
        .database_with(&PoolSettings {
            min_connections: 0,
            max_connections: 1,
            acquire_timeout: Duration::from_millis(300),
            ..PoolSettings::default()
        })
        .await;
    let app = crate::support::app(db.clone(), migrations::latest_version()).await;
    let held = db.begin(&Actor::System).await.unwrap();
    let (status, headers, body) =
        tokio::time::timeout(Duration::from_secs(20), get(app.router(), "/readyz"))
            .await
            .expect("no hang");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[header::RETRY_AFTER], "2");
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(body["code"], "database_unavailable");
    assert_eq!(body["status"], 503);
    // The body says nothing about SQL or internals.
    let text = body.to_string();
    assert!(!text.contains("sqlx") && !text.contains("Pool"), "{text}");
    drop(held);
    let (status, _, _) = get(app.router(), "/readyz").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_problem_json() {
    let tdb = TestDatabase::new().await;
    let app = crate::support::app(tdb.database().await, migrations::latest_version()).await;
    let (status, headers, body) = get(app.router(), "/no/such/thing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(body["code"], "not_found");
    let response = app
        .router()
        .oneshot(Request::post("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}
