//! Nova's documented field limits end to end: 400 badRequest (403 for the metadata quota),
//! nothing created or changed; a name with control characters never reaches the store.

use nubis_api_openstack::OpenStackApi;
use nubis_testkit::openstack::{api, call, create_server, debian_image, fault, token, wait_status};
use serde_json::{Value, json};

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
    let image = debian_image(&api, &h).await;
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
        let r = create_server(&api, &h, server).await;
        assert_eq!(r.status, status, "{fields}: {}", r.body);
        fault(&r);
    }
    assert_eq!(
        servers(&api, &h).await,
        0,
        "a refused request created a server"
    );
    // The limits themselves are accepted.
    let r = create_server(
        &api,
        &h,
        json!({"name": "n".repeat(255), "imageRef": image, "flavorRef": "S5.SMALL2",
            "description": "d".repeat(255)}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    wait_status(&api, &t, &id, "ACTIVE").await;
    // Update and rebuild refuse the same names, lock its reason, and nothing changes.
    let path = format!("/compute/v2.1/servers/{id}");
    let action = format!("{path}/action");
    let h73 = [
        ("x-auth-token", t.as_str()),
        ("x-openstack-nova-api-version", "2.73"),
    ];
    let refused = [
        ("PUT", &path, &h, json!({"server": {"name": "a\u{0}b"}})),
        (
            "POST",
            &action,
            &h,
            json!({"rebuild": {"imageRef": image, "name": "x\u{1}"}}),
        ),
        (
            "POST",
            &action,
            &h73,
            json!({"lock": {"locked_reason": "r".repeat(256)}}),
        ),
        (
            "POST",
            &action,
            &h73,
            json!({"lock": {"locked_reason": "bell\u{7}"}}),
        ),
    ];
    for (method, to, headers, body) in refused {
        let r = call(&api, method, to, headers, Some(body)).await;
        assert_eq!(r.status, 400, "{method} {to}: {}", r.body);
    }
    let s = call(&api, "GET", &path, &h73, None).await;
    assert_eq!(
        s.body["server"]["locked"],
        json!(false),
        "a refused lock locked"
    );
    assert_eq!(s.body["server"]["name"], json!("n".repeat(255)));
    assert_eq!(
        s.body["server"]["status"],
        json!("ACTIVE"),
        "a refused rebuild started"
    );
}
