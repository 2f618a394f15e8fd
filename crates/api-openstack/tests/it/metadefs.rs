//! Glance's metadata definitions in-process (docs/images.md, "Metadata definitions"): many
//! changes of one namespace at once all land (each is a generation-checked write, retried when
//! another won), and a namespace's contents answer 404 like the namespace itself.

use nubis_api_openstack::OpenStackApi;
use nubis_testkit::PASSWORD;
use serde_json::{Value, json};
use std::sync::Arc;

async fn call(
    api: &OpenStackApi,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let headers = [
        ("content-type", "application/json"),
        ("x-auth-token", token),
    ];
    let r = nubis_testkit::openstack::call(api, method, path, &headers, body).await;
    (r.status, r.body)
}

async fn admin() -> (Arc<OpenStackApi>, String, tempfile::TempDir) {
    let (engine, dir) = nubis_testkit::engine_with(None, Some(PASSWORD)).await;
    let api = OpenStackApi::new(engine, false);
    let auth = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": PASSWORD}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}});
    let r = nubis_testkit::openstack::call(
        &api,
        "POST",
        "/identity/v3/auth/tokens",
        &[("content-type", "application/json")],
        Some(auth),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let token = r
        .headers
        .into_iter()
        .find(|(k, _)| k == "x-subject-token")
        .map(|(_, v)| v)
        .unwrap();
    (Arc::new(api), token, dir)
}

const NS: &str = "/image/v2/metadefs/namespaces";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_of_one_namespace_all_land() {
    let (api, token, _dir) = admin().await;
    let (status, body) = call(&api, "POST", NS, &token, Some(json!({"namespace": "busy"}))).await;
    assert_eq!(status, 201, "{body}");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (api, token) = (Arc::clone(&api), token.clone());
        tasks.spawn(async move {
            let path = format!("{NS}/busy/tags/t{i}");
            call(&api, "POST", &path, &token, None).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (status, body) = done.unwrap();
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = call(&api, "GET", &format!("{NS}/busy/tags"), &token, None).await;
    assert_eq!(status, 200);
    let mut names: Vec<&str> = body["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    let mut want: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
    want.sort_unstable();
    assert_eq!(names, want);
}

#[tokio::test]
async fn the_contents_of_a_missing_namespace_are_404_and_a_duplicate_is_409() {
    let (api, token, _dir) = admin().await;
    for (method, path) in [
        ("GET", format!("{NS}/nope")),
        ("GET", format!("{NS}/nope/objects")),
        ("GET", format!("{NS}/nope/properties/p")),
        ("POST", format!("{NS}/nope/tags/t")),
        (
            "DELETE",
            format!("{NS}/nope/resource_types/OS::Glance::Image"),
        ),
    ] {
        let (status, body) = call(&api, method, &path, &token, None).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
    }
    let body = json!({"namespace": "twice", "visibility": "public"});
    assert_eq!(
        call(&api, "POST", NS, &token, Some(body.clone())).await.0,
        201
    );
    assert_eq!(call(&api, "POST", NS, &token, Some(body)).await.0, 409);
    let (status, body) = call(
        &api,
        "GET",
        "/image/v2/metadefs/resource_types",
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["resource_types"][1]["name"], "OS::Glance::Image");
}
