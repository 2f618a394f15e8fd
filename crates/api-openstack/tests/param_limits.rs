//! Nova's documented field limits end to end: 400 badRequest (403 for the metadata quota),
//! nothing created or changed; a name with control characters never reaches the store.

use nubis_api_openstack::{OpenStackApi, RawRequest, Reply};
use nubis_auth::secret::SecretBox;
use nubis_driver::sim::SimDriver;
use nubis_engine::Engine;
use nubis_store::SqliteStore;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const KEY_ID: &str = "testid";
const PASSWORD: &str = "Adm1n-Passw0rd";

async fn api() -> (OpenStackApi, Engine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("n.db")).unwrap();
    let secrets = SecretBox::load_or_create(dir.path().join("k")).unwrap();
    let engine = Engine::start(Arc::new(store), Arc::new(SimDriver::new(0.0)), secrets)
        .await
        .unwrap();
    engine
        .bootstrap(
            Some((KEY_ID.into(), "secret".into())),
            Some(PASSWORD.into()),
        )
        .await
        .unwrap();
    let api = OpenStackApi::new(engine.clone(), false);
    (api, engine, dir)
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn call(
    api: &OpenStackApi,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Resp {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let r: Reply = api
        .handle(RawRequest {
            method,
            host: "127.0.0.1:9999",
            path,
            raw_query: query,
            headers: &headers,
            body: body.as_bytes(),
            peer: None,
        })
        .await;
    assert!(
        r.headers
            .iter()
            .any(|(k, v)| k == "x-openstack-request-id" && v.starts_with("req-")),
        "{method} {path}: no request id"
    );
    Resp {
        status: r.status,
        body: serde_json::from_slice(&r.body).unwrap_or(Value::Null),
        headers: r.headers,
    }
}

fn password_auth(password: &str) -> Value {
    json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}})
}

async fn token(api: &OpenStackApi) -> String {
    let r = call(
        api,
        "POST",
        "/identity/v3/auth/tokens",
        &[],
        Some(password_auth(PASSWORD)),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.header("x-subject-token").unwrap().to_string()
}

fn fault(r: &Resp) -> (u16, &str, &str) {
    let (name, inner) = r.body.as_object().unwrap().iter().next().unwrap();
    assert_eq!(inner["code"], json!(r.status));
    (r.status, name.as_str(), inner["message"].as_str().unwrap())
}

async fn wait_status(api: &OpenStackApi, t: &str, id: &str, status: &str) -> Value {
    for _ in 0..500 {
        let r = call(
            api,
            "GET",
            &format!("/compute/v2.1/servers/{id}"),
            &[("x-auth-token", t)],
            None,
        )
        .await;
        let s = &r.body["server"];
        if s["status"] == json!(status) && s["OS-EXT-STS:task_state"].is_null() {
            return s.clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{id} never became {status}");
}

async fn image(api: &OpenStackApi, h: &[(&str, &str)]) -> String {
    let images = call(
        api,
        "GET",
        "/image/v2/images?name=Debian%2012.5%2064bit",
        h,
        None,
    )
    .await;
    images.body["images"][0]["id"].as_str().unwrap().to_string()
}

async fn servers(api: &OpenStackApi, h: &[(&str, &str)]) -> usize {
    let r = call(api, "GET", "/compute/v2.1/servers", h, None).await;
    r.body["servers"].as_array().unwrap().len()
}

#[tokio::test]
async fn server_fields_within_their_limits() {
    let (api, _engine, _d) = api().await;
    let t = token(&api).await;
    let h = [
        ("x-auth-token", t.as_str()),
        ("x-openstack-nova-api-version", "2.19"),
    ];
    let image = image(&api, &h).await;
    let many: serde_json::Map<String, Value> =
        (0..129).map(|n| (format!("k{n}"), json!("v"))).collect();
    let bad = [
        (json!({"name": "web\u{1b}[2J\u{0}"}), 400),
        (json!({"name": "n".repeat(256)}), 400),
        (json!({"name": " lead"}), 400),
        (json!({"name": "w", "description": "d".repeat(256)}), 400),
        (json!({"name": "w", "description": "bell\u{7}"}), 400),
        (
            json!({"name": "w", "metadata": {"k": "v".repeat(256)}}),
            400,
        ),
        (
            json!({"name": "w", "metadata": {"k".repeat(256): "v"}}),
            400,
        ),
        (json!({"name": "w", "metadata": many}), 403),
    ];
    for (fields, status) in bad {
        let mut server = json!({"imageRef": image, "flavorRef": "S5.SMALL2"});
        for (k, v) in fields.as_object().unwrap() {
            server[k] = v.clone();
        }
        let r = call(
            &api,
            "POST",
            "/compute/v2.1/servers",
            &h,
            Some(json!({"server": server})),
        )
        .await;
        assert_eq!(r.status, status, "{fields}: {}", r.body);
        fault(&r);
    }
    assert_eq!(
        servers(&api, &h).await,
        0,
        "a refused request created a server"
    );
    // The limits themselves are accepted.
    let r = call(
        &api,
        "POST",
        "/compute/v2.1/servers",
        &h,
        Some(
            json!({"server": {"name": "n".repeat(255), "imageRef": image, "flavorRef": "S5.SMALL2",
            "description": "d".repeat(255)}}),
        ),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    wait_status(&api, &t, &id, "ACTIVE").await;
    // Update and rebuild refuse the same names and change nothing.
    let path = format!("/compute/v2.1/servers/{id}");
    let r = call(
        &api,
        "PUT",
        &path,
        &h,
        Some(json!({"server": {"name": "a\u{0}b"}})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let action = format!("{path}/action");
    let r = call(
        &api,
        "POST",
        &action,
        &h,
        Some(json!({"rebuild": {"imageRef": image, "name": "x\u{1}"}})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let s = call(&api, "GET", &path, &h, None).await;
    assert_eq!(s.body["server"]["name"], json!("n".repeat(255)));
    assert_eq!(
        s.body["server"]["status"],
        json!("ACTIVE"),
        "a refused rebuild started"
    );
}
