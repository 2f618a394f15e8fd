//! The dialect end to end over an in-process engine (sim driver, time scale 0): Keystone
//! tokens, Nova auth and microversions, a server through rescue, and the fault envelopes.

use nubis_api_openstack::{OpenStackApi, Reply};
use nubis_engine::Engine;
use nubis_testkit::openstack::{self, Resp, Wire, fault, password_auth, user_auth};
use nubis_testkit::{PASSWORD, TempDir};
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// The configured public URL; every request carries a hostile Host header that must not leak
/// into any URL nubis returns.
const PUBLIC_URL: &str = "http://127.0.0.1:9999";
const HOSTILE_HOST: &str = "evil.example:666";

const WIRE: Wire = Wire {
    host: HOSTILE_HOST,
    peer: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    check: host_does_not_leak,
};

fn host_does_not_leak(method: &str, path: &str, r: &Reply) {
    assert!(
        !String::from_utf8_lossy(&r.body).contains("evil.example")
            && !r.headers.iter().any(|(_, v)| v.contains("evil.example")),
        "{method} {path}: the Host header leaked into the reply"
    );
}

async fn api() -> (OpenStackApi, Engine, TempDir) {
    let (api, engine, dir) = openstack::api().await;
    (api.with_public_url(PUBLIC_URL.into()), engine, dir)
}

async fn call(
    api: &OpenStackApi,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Resp {
    openstack::call_via(api, &WIRE, method, path, headers, body).await
}

async fn token(api: &OpenStackApi) -> String {
    user_token(api, "admin", PASSWORD).await
}

async fn user_token(api: &OpenStackApi, name: &str, password: &str) -> String {
    openstack::user_token_via(api, &WIRE, name, password).await
}

/// The flavor list with token `t`.
async fn flavors(api: &OpenStackApi, t: &str) -> Resp {
    call(
        api,
        "GET",
        "/compute/v2.1/flavors",
        &[("x-auth-token", t)],
        None,
    )
    .await
}

/// Adds Keystone user `name` with the reader role and password `Auditor@2026pw`.
async fn add_reader(engine: &Engine, name: &str) {
    engine
        .add_keystone_user(name, "Auditor@2026pw", vec!["reader".into()])
        .await
        .unwrap();
}

async fn wait_status(api: &OpenStackApi, t: &str, id: &str, status: &str) -> Value {
    openstack::wait_status_via(api, &WIRE, t, id, status).await
}

#[tokio::test]
async fn keystone_tokens() {
    let (api, _e, _d) = api().await;
    let r = call(&api, "GET", "/identity", &[], None).await;
    assert_eq!(r.status, 300);
    let r = call(&api, "GET", "/identity/v3/", &[], None).await;
    assert_eq!(r.body["version"]["id"], json!("v3.14"));
    let r = call(
        &api,
        "POST",
        "/identity/v3/auth/tokens",
        &[],
        Some(password_auth("wrong")),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"]["title"], json!("Unauthorized"));
    let t = token(&api).await;
    let r = look(&api, "GET", &t, &t).await;
    assert_eq!(r.status, 200);
    let catalog = r.body["token"]["catalog"].as_array().unwrap();
    let compute = catalog.iter().find(|s| s["type"] == "compute").unwrap();
    assert_eq!(
        compute["endpoints"][0]["url"],
        json!("http://127.0.0.1:9999/compute/v2.1")
    );
    let roles: Vec<&str> = r.body["token"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["admin", "member", "reader"]);
    let r = look(&api, "DELETE", &t, &t).await;
    assert_eq!(r.status, 204);
    let r = flavors(&api, &t).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn every_authenticated_route_needs_a_token() {
    let (api, _e, _d) = api().await;
    for (method, path) in [
        ("GET", "/compute/v2.1/servers"),
        ("GET", "/compute/v2.1/servers/detail"),
        ("POST", "/compute/v2.1/servers"),
        (
            "GET",
            "/compute/v2.1/servers/00000000-0000-0000-0000-000000000000",
        ),
        (
            "POST",
            "/compute/v2.1/servers/00000000-0000-0000-0000-000000000000/action",
        ),
        ("GET", "/compute/v2.1/flavors/detail"),
        ("GET", "/compute/v2.1/os-keypairs"),
        ("GET", "/compute/v2.1/limits"),
        ("GET", "/compute/v2.1/servers/"),
        ("GET", "/image/v2/images"),
    ] {
        for tok in [None, Some("bogus")] {
            let h: Vec<(&str, &str)> = tok.map(|t| ("x-auth-token", t)).into_iter().collect();
            let r = call(&api, method, path, &h, Some(json!({}))).await;
            assert_eq!(r.status, 401, "{method} {path}");
        }
    }
    // Discovery needs none.
    for path in ["/compute", "/compute/v2.1/", "/image"] {
        let r = call(&api, "GET", path, &[], None).await;
        assert!(r.status == 200 || r.status == 300, "{path}");
    }
}

#[tokio::test]
async fn microversions() {
    let (api, _e, _d) = api().await;
    let t = token(&api).await;
    let r = flavors(&api, &t).await;
    assert_eq!(r.header("x-openstack-nova-api-version"), Some("2.1"));
    assert_eq!(r.header("openstack-api-version"), Some("compute 2.1"));
    assert!(r.header("x-compute-request-id").is_some());
    let r = call(
        &api,
        "GET",
        "/compute/v2.1/flavors",
        &[
            ("x-auth-token", &t),
            ("x-openstack-nova-api-version", "2.101"),
        ],
        None,
    )
    .await;
    assert_eq!(fault(&r).0, 406);
    assert_eq!(fault(&r).1, "computeFault");
    // Nova routes nothing with a trailing `/` below the version root: an empty ID is 404.
    for (method, path) in [
        ("GET", "/compute/v2.1/servers/"),
        ("DELETE", "/compute/v2.1/images/"),
        ("GET", "/compute/v2.1/os-simple-tenant-usage/"),
    ] {
        let r = call(&api, method, path, &[("x-auth-token", &t)], None).await;
        assert_eq!(fault(&r).0, 404, "{method} {path}");
    }
    let r = call(
        &api,
        "GET",
        "/compute/v2.1/flavors/detail",
        &[
            ("x-auth-token", &t),
            ("openstack-api-version", "compute 2.75"),
        ],
        None,
    )
    .await;
    assert_eq!(r.body["flavors"][0]["swap"], json!(0));
    assert_eq!(r.header("openstack-api-version"), Some("compute 2.75"));
}

#[tokio::test]
async fn server_through_rescue() {
    let (api, engine, _d) = api().await;
    let t = token(&api).await;
    let h = [("x-auth-token", t.as_str())];
    let image = openstack::debian_image_via(&api, &WIRE, &h).await;
    let r = openstack::create_server_via(
        &api,
        &WIRE,
        &h,
        json!({"name": "w1", "imageRef": image, "flavorRef": "S5.SMALL2",
            "adminPass": "Own-Passw0rd"}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["server"]["adminPass"], json!("Own-Passw0rd"));
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    let s = wait_status(&api, &t, &id, "ACTIVE").await;
    // The 2.1 view: flavor as a link, no later fields.
    assert_eq!(s["flavor"]["id"], json!("S5.SMALL2"));
    assert!(s.get("locked").is_none() && s.get("description").is_none());
    assert_eq!(s["OS-EXT-STS:power_state"], json!(1));

    let action = format!("/compute/v2.1/servers/{id}/action");
    let r = call(&api, "POST", &action, &h, Some(json!({"rescue": null}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rescue_pw = r.body["adminPass"].as_str().unwrap().to_string();
    let s = wait_status(&api, &t, &id, "RESCUE").await;
    assert_eq!(s["OS-EXT-STS:vm_state"], json!("rescued"));
    let admin_id = engine.resolve_any(&id).unwrap().to_string();
    assert!(
        engine
            .admin_check_password(&admin_id, "root", &rescue_pw)
            .await
            .unwrap()
    );
    let r = call(
        &api,
        "POST",
        &action,
        &h,
        Some(json!({"reboot": {"type": "HARD"}})),
    )
    .await;
    assert_eq!(
        fault(&r),
        (
            409,
            "conflictingRequest",
            format!("Cannot 'reboot' instance {id} while it is in vm_state rescued").as_str()
        )
    );
    let r = call(&api, "GET", &action, &h, None).await;
    assert_eq!(fault(&r).1, "badMethod");
    let r = call(&api, "POST", &action, &h, Some(json!({"unrescue": {}}))).await;
    assert_eq!(r.status, 202);
    wait_status(&api, &t, &id, "ACTIVE").await;
    assert!(
        engine
            .admin_check_password(&admin_id, "root", "Own-Passw0rd")
            .await
            .unwrap()
    );
    let r = call(
        &api,
        "DELETE",
        &format!("/compute/v2.1/servers/{id}"),
        &h,
        None,
    )
    .await;
    assert_eq!(r.status, 204);
    for _ in 0..500 {
        let r = call(
            &api,
            "GET",
            &format!("/compute/v2.1/servers/{id}"),
            &h,
            None,
        )
        .await;
        if r.status == 404 {
            assert_eq!(
                fault(&r),
                (
                    404,
                    "itemNotFound",
                    format!("Instance {id} could not be found.").as_str()
                )
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never deleted");
}

async fn look(api: &OpenStackApi, method: &str, caller: &str, subject: &str) -> Resp {
    call(
        api,
        method,
        "/identity/v3/auth/tokens",
        &[("x-auth-token", caller), ("x-subject-token", subject)],
        None,
    )
    .await
}

/// A reader's token may look at and revoke only its own user's tokens; an admin's any.
#[tokio::test]
async fn tokens_are_validated_and_revoked_only_by_their_user_or_an_admin() {
    let (api, engine, _d) = api().await;
    for name in ["auditor", "other"] {
        add_reader(&engine, name).await;
    }
    let admin = token(&api).await;
    let reader = user_token(&api, "auditor", "Auditor@2026pw").await;
    let reader2 = user_token(&api, "auditor", "Auditor@2026pw").await;
    let other = user_token(&api, "other", "Auditor@2026pw").await;
    for method in ["GET", "HEAD", "DELETE"] {
        let r = look(&api, method, &reader, &admin).await;
        assert_eq!(r.status, 403, "{method}");
        let r = look(&api, method, &other, &reader).await;
        assert_eq!(r.status, 403, "{method}");
    }
    let r = look(&api, "GET", &reader, &admin).await;
    assert_eq!(
        (&r.body["error"]["code"], &r.body["error"]["title"]),
        (&json!(403), &json!("Forbidden"))
    );
    assert!(r.header("x-subject-token").is_none());
    // Nothing was revoked by the refused DELETEs.
    assert_eq!(look(&api, "GET", &admin, &admin).await.status, 200);
    assert_eq!(look(&api, "GET", &admin, &reader).await.status, 200);
    // Itself, and the same user's other token.
    assert_eq!(look(&api, "GET", &reader, &reader).await.status, 200);
    assert_eq!(look(&api, "GET", &reader2, &reader).await.status, 200);
    // An admin revokes anyone's.
    assert_eq!(look(&api, "DELETE", &admin, &other).await.status, 204);
    assert_eq!(look(&api, "GET", &admin, &other).await.status, 404);
    assert_eq!(look(&api, "DELETE", &reader, &reader2).await.status, 204);
    assert_eq!(look(&api, "GET", &reader, &reader2).await.status, 404);
}

/// Re-scoping keeps the original's expiry and counts toward the per-user bound; the oldest
/// token of that user is evicted, other users keep theirs.
#[tokio::test]
async fn tokens_are_bounded_per_user_and_rescoping_keeps_expiry() {
    let (api, engine, _d) = api().await;
    add_reader(&engine, "auditor").await;
    let reader = user_token(&api, "auditor", "Auditor@2026pw").await;
    let first = token(&api).await;
    let expires = look(&api, "GET", &first, &first).await.body["token"]["expires_at"].clone();
    let rescope = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": first}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}});
    let mut last = String::new();
    for _ in 0..nubis_api_openstack::MAX_TOKENS_PER_USER + 5 {
        let r = call(
            &api,
            "POST",
            "/identity/v3/auth/tokens",
            &[],
            Some(rescope.clone()),
        )
        .await;
        if r.status != 201 {
            // The original itself was evicted by its own re-scopes: that ends the chain
            // (Keystone's TokenNotFound).
            assert_eq!(r.status, 404);
            break;
        }
        assert_eq!(r.body["token"]["expires_at"], expires);
        last = r.header("x-subject-token").unwrap().to_string();
    }
    assert_eq!(
        api.live_tokens_of("admin").await,
        nubis_api_openstack::MAX_TOKENS_PER_USER
    );
    assert_eq!(
        look(&api, "GET", &last, &first).await.status,
        404,
        "oldest evicted"
    );
    assert_eq!(look(&api, "GET", &last, &reader).await.status, 200);
    assert_eq!(api.live_tokens_of("auditor").await, 1);
}

/// A user's tokens die with a password change or the user's deletion.
#[tokio::test]
async fn tokens_die_with_their_users_credential() {
    let (api, engine, _d) = api().await;
    add_reader(&engine, "auditor").await;
    let admin = token(&api).await;
    let t = user_token(&api, "auditor", "Auditor@2026pw").await;
    engine
        .update_keystone_user("auditor", Some("Changed@2026pw"), None)
        .await
        .unwrap();
    assert_eq!(look(&api, "GET", &admin, &t).await.status, 404);
    let t = user_token(&api, "auditor", "Changed@2026pw").await;
    engine.delete_keystone_user("auditor").await.unwrap();
    let r = flavors(&api, &t).await;
    assert_eq!(r.status, 401);
}

/// Failed logins: per user, then per source address; 429 in Keystone's shape with
/// Retry-After, even for the right password while blocked.
#[tokio::test]
async fn failed_logins_are_throttled_per_user_and_per_source() {
    let (api, engine, _d) = api().await;
    let api = api.with_login_throttle(nubis_auth::login::LoginThrottle::new(
        3,
        5,
        Duration::from_secs(60),
    ));
    add_reader(&engine, "auditor").await;
    let login = |body: Value| {
        let api = &api;
        async move { call(api, "POST", "/identity/v3/auth/tokens", &[], Some(body)).await }
    };
    for _ in 0..3 {
        assert_eq!(login(password_auth("wrong")).await.status, 401);
    }
    let r = login(password_auth(PASSWORD)).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(
        (&r.body["error"]["code"], &r.body["error"]["title"]),
        (&json!(429), &json!("Too Many Requests"))
    );
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(r.header("x-subject-token").is_none());
    // The admin by ID shares the record.
    let by_id = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "id": nubis_api_openstack::ids::user_id("admin"), "password": PASSWORD}}}}});
    assert_eq!(login(by_id).await.status, 429);
    // Another user still logs in, until the source address has had 5 failures.
    assert_eq!(
        login(user_auth("auditor", "Auditor@2026pw")).await.status,
        201
    );
    assert_eq!(login(user_auth("nobody", "x")).await.status, 401);
    assert_eq!(login(user_auth("auditor", "wrong")).await.status, 401);
    assert_eq!(
        login(user_auth("auditor", "Auditor@2026pw")).await.status,
        429
    );
}

/// Issue 15: `personality` before 2.57 on create and rebuild reaches the guest (the sim's
/// model shows paths and sizes), with the user data; Nova's limits and its unknown-field
/// refusal from 2.57.
#[tokio::test]
async fn personality_and_user_data_reach_the_guest() {
    let (api, engine, _d) = api().await;
    let t = token(&api).await;
    let v256 = [
        ("x-auth-token", t.as_str()),
        ("openstack-api-version", "compute 2.56"),
    ];
    let v257 = [
        ("x-auth-token", t.as_str()),
        ("openstack-api-version", "compute 2.57"),
    ];
    let image = openstack::debian_image_via(&api, &WIRE, &v256).await;
    let file = |path: &str, contents: &str| json!({"path": path, "contents": contents});
    let server = |personality: Value| {
        json!({"name": "p1", "imageRef": image, "flavorRef": "S5.SMALL2",
            "user_data": "IyEvYmluL3NoCnRvdWNoIC90bXAvb2sK", "networks": "none",
            "personality": personality})
    };
    // The limits first: nothing is created.
    let six: Vec<Value> = (0..6).map(|i| file(&format!("etc/t{i}"), "aGk=")).collect();
    let r = openstack::create_server_via(&api, &WIRE, &v256, server(json!(six))).await;
    assert_eq!(
        fault(&r),
        (403, "forbidden", "Personality file limit exceeded")
    );
    let r =
        openstack::create_server_via(&api, &WIRE, &v256, server(json!([file("/a", "!")]))).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = openstack::create_server_via(&api, &WIRE, &v257, server(json!([]))).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.to_string().contains("'personality' was unexpected"),
        "{}",
        r.body
    );
    let r = call(&api, "GET", "/compute/v2.1/limits", &v256, None).await;
    assert_eq!(r.body["limits"]["absolute"]["maxPersonality"], json!(5));
    assert_eq!(
        r.body["limits"]["absolute"]["maxPersonalitySize"],
        json!(10240)
    );

    let r = openstack::create_server_via(
        &api,
        &WIRE,
        &v256,
        server(json!([file("/test.txt", "VGhpcyBpcyBhIHRlc3QgZmlsZS4=")])),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    wait_status(&api, &t, &id, "ACTIVE").await;
    let admin_id = engine.resolve_any(&id).unwrap().to_string();
    let given = engine.admin_guest(&admin_id).await.unwrap()["system"]["given"].clone();
    assert_eq!(
        given,
        json!({"files": [{"path": "/test.txt", "bytes": 20}],
            "user_data": {"bytes": 24, "script": true}})
    );

    // A rebuild gives its own files (relative paths from /), keeps the user data.
    let action = format!("/compute/v2.1/servers/{id}/action");
    let rebuild = |personality: Value| {
        Some(json!({"rebuild": {"imageRef": image, "personality": personality}}))
    };
    let r = call(
        &api,
        "POST",
        &action,
        &v256,
        rebuild(json!([file("../x", "")])),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = call(&api, "POST", &action, &v257, rebuild(json!([]))).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = call(
        &api,
        "POST",
        &action,
        &v256,
        rebuild(json!([file("rebuild.txt", "aGk=")])),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    wait_status(&api, &t, &id, "ACTIVE").await;
    let given = engine.admin_guest(&admin_id).await.unwrap()["system"]["given"].clone();
    assert_eq!(
        given,
        json!({"files": [{"path": "/rebuild.txt", "bytes": 2}],
            "user_data": {"bytes": 24, "script": true}})
    );
    // 2.57: new user data, no files.
    let r = call(
        &api,
        "POST",
        &action,
        &v257,
        Some(json!({"rebuild": {"imageRef": image, "user_data": "aGVsbG8="}})),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["server"]["user_data"], json!("aGVsbG8="));
    wait_status(&api, &t, &id, "ACTIVE").await;
    let given = engine.admin_guest(&admin_id).await.unwrap()["system"]["given"].clone();
    assert_eq!(
        given,
        json!({"files": [], "user_data": {"bytes": 5, "script": false}})
    );
}
