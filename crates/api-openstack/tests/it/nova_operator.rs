//! Nova's operator views (docs/nova-operator.md) over an in-process engine: hypervisors,
//! services, availability zones, aggregates and simple tenant usage, at the microversions
//! that change them, with Nova's admin-only rules and every bad input's exact fault; the
//! operator's changes survive a restart.

use nubis_api_openstack::OpenStackApi;
use nubis_engine::Engine;
use nubis_testkit::PASSWORD;
use nubis_testkit::openstack::{self, Resp, fault};
use serde_json::{Value, json};

const MEMBER_PW: &str = "Member@2026pw";

struct T {
    api: OpenStackApi,
    admin: String,
    member: String,
}

impl T {
    async fn new(engine: Engine) -> Self {
        let api = OpenStackApi::new(engine.clone(), false);
        let admin = openstack::token(&api).await;
        if engine
            .add_keystone_user("mia", MEMBER_PW, vec!["member".into()])
            .await
            .is_err()
        {
            // Already there (a restart over the same store).
        }
        let member =
            openstack::user_token_via(&api, &openstack::Wire::LOCAL, "mia", MEMBER_PW).await;
        Self { api, admin, member }
    }

    /// `method path` as `who` at microversion `v` (`None`: the default, 2.1).
    async fn at(
        &self,
        who: &str,
        v: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        let mut h = vec![("x-auth-token", who)];
        if let Some(v) = v {
            h.push(("openstack-api-version", v));
        }
        let path = format!("/compute/v2.1{path}");
        openstack::call(&self.api, method, &path, &h, body).await
    }

    async fn admin(&self, v: Option<&str>, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.at(&self.admin, v, method, path, body).await
    }

    /// As the admin, asserting a 200; the body.
    async fn ok(&self, v: Option<&str>, method: &str, path: &str, body: Option<Value>) -> Value {
        let r = self.admin(v, method, path, body).await;
        assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
        r.body
    }

    /// `GET path` as the admin, asserting a 200; the body.
    async fn get(&self, v: Option<&str>, path: &str) -> Value {
        self.ok(v, "GET", path, None).await
    }

    /// `method path` with `body` as the admin, asserting a 200; the body.
    async fn send(&self, v: Option<&str>, method: &str, path: &str, body: Value) -> Value {
        self.ok(v, method, path, Some(body)).await
    }

    /// `POST /os-aggregates` of `aggregate` as the admin, asserting a 200; the body.
    async fn create_aggregate(&self, v: Option<&str>, aggregate: Value) -> Value {
        self.send(v, "POST", "/os-aggregates", json!({"aggregate": aggregate}))
            .await
    }

    /// An action on aggregate `id` as the admin at 2.1, asserting a 200; the body.
    async fn act(&self, id: impl std::fmt::Display, action: Value) -> Value {
        let path = format!("/os-aggregates/{id}/action");
        self.send(None, "POST", &path, action).await
    }

    /// As the admin, asserting the fault's status and exact message.
    async fn refused(
        &self,
        v: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
        status: u16,
        message: &str,
    ) {
        let r = self.admin(v, method, path, body).await;
        assert_eq!(r.status, status, "{method} {path}: {}", r.body);
        let (_, _, m) = fault(&r);
        assert_eq!(m, message, "{method} {path}");
    }

    /// As the admin, asserting that the fault's message ends with `suffix` (a validation
    /// message whose start names the schema path); the fault's status.
    async fn refused_ending(
        &self,
        v: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
        suffix: &str,
    ) -> u16 {
        let r = self.admin(v, method, path, body).await;
        let (status, _, m) = fault(&r);
        assert!(m.ends_with(suffix), "{method} {path}: {}", r.body);
        status
    }

    /// Each call refused as `refused` checks, in order.
    async fn refuses(&self, calls: &[Refusal<'_>]) {
        for (v, method, path, body, status, message) in calls {
            self.refused(*v, method, path, body.clone(), *status, message)
                .await;
        }
    }

    async fn server(&self) -> Value {
        let image = openstack::debian_image(&self.api, &[("x-auth-token", &self.admin)]).await;
        let r = openstack::create_server(
            &self.api,
            &[("x-auth-token", &self.admin)],
            json!({"name": "op", "imageRef": image, "flavorRef": "S5.SMALL2",
                "availability_zone": "nova"}),
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.body);
        let id = r.body["server"]["id"].as_str().unwrap().to_string();
        openstack::wait_status(&self.api, &self.admin, &id, "ACTIVE").await
    }
}

/// An admin call and how it is refused: microversion, method, path, body, status, message.
type Refusal<'a> = (
    Option<&'a str>,
    &'a str,
    &'a str,
    Option<Value>,
    u16,
    &'a str,
);

async fn fresh() -> (T, nubis_testkit::TempDir) {
    let (engine, dir) = nubis_testkit::engine().await;
    (T::new(engine).await, dir)
}

const V253: Option<&str> = Some("compute 2.53");

/// Every operator view refuses a project member with Nova's 403 body naming the rule; the
/// usage of its own project is the one it may read.
#[tokio::test]
async fn a_member_is_refused_with_the_rule_named() {
    let (t, _d) = fresh().await;
    #[rustfmt::skip]
    let cases: &[(&str, &str, Option<Value>, &str)] = &[
        ("GET", "/os-hypervisors", None, "os-hypervisors:list"),
        ("GET", "/os-hypervisors/detail", None, "os-hypervisors:list-detail"),
        ("GET", "/os-hypervisors/statistics", None, "os-hypervisors:statistics"),
        ("GET", "/os-hypervisors/1", None, "os-hypervisors:show"),
        ("GET", "/os-hypervisors/1/uptime", None, "os-hypervisors:uptime"),
        ("GET", "/os-hypervisors/nubis/search", None, "os-hypervisors:search"),
        ("GET", "/os-hypervisors/nubis/servers", None, "os-hypervisors:servers"),
        ("GET", "/os-services", None, "os-services:list"),
        ("PUT", "/os-services/disable", Some(json!({"host": "nubis-nova", "binary": "nova-compute"})), "os-services:update"),
        ("DELETE", "/os-services/3", None, "os-services:delete"),
        ("GET", "/os-availability-zone/detail", None, "os-availability-zone:detail"),
        ("GET", "/os-aggregates", None, "os-aggregates:index"),
        ("POST", "/os-aggregates", Some(json!({"aggregate": {"name": "a"}})), "os-aggregates:create"),
        ("GET", "/os-aggregates/1", None, "os-aggregates:show"),
        ("PUT", "/os-aggregates/1", Some(json!({"aggregate": {"name": "b"}})), "os-aggregates:update"),
        ("DELETE", "/os-aggregates/1", None, "os-aggregates:delete"),
        ("POST", "/os-aggregates/1/action", Some(json!({"add_host": {"host": "nubis-nova"}})), "os-aggregates:add_host"),
        ("POST", "/os-aggregates/1/action", Some(json!({"remove_host": {"host": "nubis-nova"}})), "os-aggregates:remove_host"),
        ("POST", "/os-aggregates/1/action", Some(json!({"set_metadata": {"metadata": {}}})), "os-aggregates:set_metadata"),
        ("GET", "/os-simple-tenant-usage", None, "os-simple-tenant-usage:list"),
        ("GET", "/os-simple-tenant-usage/someone-else", None, "os-simple-tenant-usage:show"),
    ];
    for (method, path, body, rule) in cases {
        let r = t.at(&t.member, None, method, path, body.clone()).await;
        assert_eq!(
            r.body,
            json!({"forbidden": {"code": 403,
                "message": format!("Policy doesn't allow os_compute_api:{rule} to be performed.")}}),
            "{method} {path}"
        );
    }
    // Its own project's usage: allowed.
    let server = t.server().await;
    let project = server["tenant_id"].as_str().unwrap();
    let r = t
        .at(
            &t.member,
            None,
            "GET",
            &format!("/os-simple-tenant-usage/{project}?start=2020-01-01T00:00:00"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["tenant_usage"]["tenant_id"], json!(project));
}

/// One hypervisor per zone; a server is on its zone's host, and every view says so.
#[tokio::test]
async fn hypervisors_one_per_zone_and_the_servers_on_them() {
    let (t, _d) = fresh().await;
    let server = t.server().await;
    let id = server["id"].as_str().unwrap();
    assert_eq!(server["OS-EXT-SRV-ATTR:host"], json!("nubis-nova"));
    assert_eq!(
        server["OS-EXT-SRV-ATTR:hypervisor_hostname"],
        json!("nubis-nova")
    );

    let list = t.get(None, "/os-hypervisors").await;
    assert_eq!(
        list,
        json!({"hypervisors": [
            {"id": 1, "hypervisor_hostname": "nubis-nova", "state": "up", "status": "enabled"},
            {"id": 2, "hypervisor_hostname": "nubis-nova-b", "state": "up", "status": "enabled"},
            {"id": 3, "hypervisor_hostname": "nubis-edge", "state": "up", "status": "enabled"},
        ]})
    );
    let detail = t.get(None, "/os-hypervisors/detail").await;
    let h = &detail["hypervisors"][0];
    assert_eq!(h["running_vms"], json!(1));
    assert_eq!(h["vcpus_used"], json!(1));
    assert_eq!(h["memory_mb_used"], json!(2048));
    assert_eq!(
        h["service"],
        json!({"host": "nubis-nova", "id": 3, "disabled_reason": null})
    );
    assert!(h["cpu_info"].is_string(), "a JSON string before 2.28");
    assert_eq!(detail["hypervisors"][1]["running_vms"], json!(0));
    let show = t.get(None, "/os-hypervisors/1").await;
    assert_eq!(show["hypervisor"], *h);
    let v228 = t.get(Some("compute 2.28"), "/os-hypervisors/1").await;
    assert!(v228["hypervisor"]["cpu_info"].is_object());

    let stats = t.get(None, "/os-hypervisors/statistics").await;
    assert_eq!(stats["hypervisor_statistics"]["count"], json!(3));
    assert_eq!(stats["hypervisor_statistics"]["running_vms"], json!(1));
    assert_eq!(stats["hypervisor_statistics"]["vcpus"], json!(384));

    let up = t.get(None, "/os-hypervisors/2/uptime").await;
    assert!(
        up["hypervisor"]["uptime"]
            .as_str()
            .unwrap()
            .contains(" up "),
        "{up}"
    );
    assert_eq!(
        up["hypervisor"]["hypervisor_hostname"],
        json!("nubis-nova-b")
    );

    let search = t.get(None, "/os-hypervisors/nova/search").await;
    assert_eq!(search["hypervisors"].as_array().unwrap().len(), 2);
    assert!(search["hypervisors"][0].get("servers").is_none());
    let on = t.get(None, "/os-hypervisors/nubis-nova/servers").await;
    assert_eq!(
        on["hypervisors"][0]["servers"],
        json!([{"name": "op", "uuid": id}])
    );
    assert!(
        on["hypervisors"][1].get("servers").is_none(),
        "none on nubis-nova-b"
    );

    // The admin's host filter names the same host.
    let f = t.get(None, "/servers?host=nubis-nova").await;
    assert_eq!(f["servers"].as_array().unwrap().len(), 1);
    let f = t.get(None, "/servers?host=nubis-edge").await;
    assert_eq!(f["servers"], json!([]));

    // 2.53: UUIDs, with_servers, the hostname pattern, paging.
    let l = t.get(V253, "/os-hypervisors?with_servers=true").await;
    let hid = l["hypervisors"][0]["id"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::try_parse(&hid).is_ok());
    assert_eq!(l["hypervisors"][0]["servers"][0]["uuid"], json!(id));
    let s = t
        .get(V253, &format!("/os-hypervisors/{hid}?with_servers=1"))
        .await;
    assert_eq!(s["hypervisor"]["servers"][0]["name"], json!("op"));
    assert!(uuid::Uuid::try_parse(s["hypervisor"]["service"]["id"].as_str().unwrap()).is_ok());
    let p = t
        .get(V253, "/os-hypervisors?hypervisor_hostname_pattern=edge")
        .await;
    assert_eq!(p["hypervisors"].as_array().unwrap().len(), 1);
    let page = t.get(V253, "/os-hypervisors?limit=2").await;
    assert_eq!(page["hypervisors"].as_array().unwrap().len(), 2);
    let next = page["hypervisors_links"][0]["href"].as_str().unwrap();
    let marker = next.rsplit("marker=").next().unwrap();
    let rest = t
        .get(V253, &format!("/os-hypervisors?marker={marker}"))
        .await;
    assert_eq!(
        rest["hypervisors"][0]["hypervisor_hostname"],
        json!("nubis-edge")
    );

    // 2.88: no resource fields, uptime in the view, the statistics and uptime routes gone.
    let v288 = Some("compute 2.88");
    let s = t.get(v288, &format!("/os-hypervisors/{hid}")).await;
    assert!(s["hypervisor"].get("vcpus").is_none() && s["hypervisor"]["uptime"].is_string());
    #[rustfmt::skip]
    let refusals: &[Refusal] = &[
        (v288, "GET", "/os-hypervisors/statistics", None, 404, "The resource could not be found."),
        (v288, "GET", &format!("/os-hypervisors/{hid}/uptime"), None, 404, "The resource could not be found."),
    ];
    t.refuses(refusals).await;
}

#[tokio::test]
async fn hypervisor_bad_inputs() {
    let (t, _d) = fresh().await;
    let missing = "4a0b4ab4-6d2e-4a3e-9e3a-0a6a2b8d1f00";
    for path in [
        format!("/os-hypervisors/{missing}"),
        format!("/os-hypervisors/{missing}/uptime"),
        "/os-hypervisors/9".into(),
    ] {
        let id = path.split('/').nth(2).unwrap();
        t.refused(
            None,
            "GET",
            &path,
            None,
            404,
            &format!("Hypervisor with ID '{id}' could not be found."),
        )
        .await;
    }
    #[rustfmt::skip]
    let refusals: &[Refusal] = &[
        (V253, "GET", "/os-hypervisors/1", None, 400, "Invalid uuid 1"),
        (V253, "GET", &format!("/os-hypervisors/{missing}"), None, 404, &format!("Hypervisor with ID '{missing}' could not be found.")),
    ];
    t.refuses(refusals).await;
    for path in [
        "/os-hypervisors/nope/search",
        "/os-hypervisors/nope/servers",
    ] {
        t.refused(
            None,
            "GET",
            path,
            None,
            404,
            "No hypervisor matching 'nope' could be found.",
        )
        .await;
    }
    // Search and servers end at 2.52.
    #[rustfmt::skip]
    let refusals: &[Refusal] = &[
        (V253, "GET", "/os-hypervisors/nubis/search", None, 404, "The resource could not be found."),
        (V253, "GET", "/os-hypervisors?hypervisor_hostname_pattern=nope", None, 404, "No hypervisor matching 'nope' could be found."),
        (V253, "GET", "/os-hypervisors?hypervisor_hostname_pattern=nova&limit=1", None, 400, "Paging over hypervisors with the hypervisor_hostname_pattern query parameter is not supported."),
        (V253, "GET", "/os-hypervisors?marker=nope", None, 400, "marker [nope] not found"),
        (V253, "GET", "/os-hypervisors?limit=-1", None, 400, "limit must be >= 0"),
        (V253, "GET", "/os-hypervisors?bogus=1", None, 400, "Invalid input for query parameters bogus. Value: bogus. Additional properties are not allowed ('bogus' was unexpected)"),
    ];
    t.refuses(refusals).await;
    let r = t
        .admin(V253, "GET", "/os-hypervisors?with_servers=maybe", None)
        .await;
    assert_eq!(fault(&r).0, 400);
    assert!(
        fault(&r)
            .2
            .starts_with("Invalid input for query parameters with_servers. Value: maybe.")
    );
    // Before 2.53 unknown query parameters are ignored.
    assert_eq!(
        t.admin(None, "GET", "/os-hypervisors?bogus=1", None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn services_list_and_filters() {
    let (t, _d) = fresh().await;
    let l = t.get(None, "/os-services").await;
    let all = l["services"].as_array().unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0]["binary"], json!("nova-scheduler"));
    assert_eq!(all[0]["zone"], json!("internal"));
    assert_eq!(all[2]["id"], json!(3));
    assert_eq!(all[2]["host"], json!("nubis-nova"));
    assert_eq!(all[2]["zone"], json!("nova"));
    assert_eq!(all[2]["status"], json!("enabled"));
    assert_eq!(all[2]["state"], json!("up"));
    assert!(all[2].get("forced_down").is_none(), "forced_down from 2.11");
    let l = t
        .get(Some("compute 2.11"), "/os-services?binary=nova-compute")
        .await;
    assert_eq!(l["services"].as_array().unwrap().len(), 3);
    assert_eq!(l["services"][0]["forced_down"], json!(false));
    let l = t.get(None, "/os-services?host=nubis-control").await;
    assert_eq!(l["services"].as_array().unwrap().len(), 2);
    let l = t.get(None, "/os-services?host=nubis-nova&binary=xxx").await;
    assert_eq!(l["services"], json!([]));
    let l = t.get(V253, "/os-services").await;
    assert!(uuid::Uuid::try_parse(l["services"][0]["id"].as_str().unwrap()).is_ok());
    // Unknown filters: ignored until 2.74, refused from 2.75.
    let l = t
        .get(Some("compute 2.74"), "/os-services?xxx=nova-compute")
        .await;
    assert_eq!(l["services"].as_array().unwrap().len(), 5);
    t.refused(Some("compute 2.75"), "GET", "/os-services?xxx=1", None, 400,
        "Invalid input for query parameters xxx. Value: xxx. Additional properties are not allowed ('xxx' was unexpected)").await;
}

#[tokio::test]
async fn services_enable_disable_and_force_down() {
    let (t, _d) = fresh().await;
    let host = json!({"host": "nubis-nova-b", "binary": "nova-compute"});
    let mut body = host.clone();
    body["disabled_reason"] = json!("maintenance");
    let r = t
        .send(None, "PUT", "/os-services/disable-log-reason", body)
        .await;
    assert_eq!(
        r,
        json!({"service": {"host": "nubis-nova-b", "binary": "nova-compute", "status": "disabled",
            "disabled_reason": "maintenance"}})
    );
    let l = t.get(None, "/os-services?host=nubis-nova-b").await;
    assert_eq!(l["services"][0]["status"], json!("disabled"));
    assert_eq!(l["services"][0]["disabled_reason"], json!("maintenance"));
    let h = t.get(None, "/os-hypervisors/2").await;
    assert_eq!(h["hypervisor"]["status"], json!("disabled"));
    assert_eq!(
        h["hypervisor"]["service"]["disabled_reason"],
        json!("maintenance")
    );
    let az = t.get(None, "/os-availability-zone/detail").await;
    let zone = az["availabilityZoneInfo"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["zoneName"] == "nova-b")
        .unwrap()
        .clone();
    assert_eq!(zone["zoneState"]["available"], json!(false));
    assert_eq!(
        zone["hosts"]["nubis-nova-b"]["nova-compute"]["active"],
        json!(false)
    );

    let r = t
        .send(None, "PUT", "/os-services/enable", host.clone())
        .await;
    assert_eq!(r["service"]["status"], json!("enabled"));
    let l = t.get(None, "/os-services?host=nubis-nova-b").await;
    assert_eq!(l["services"][0]["disabled_reason"], Value::Null);
    let r = t
        .send(None, "PUT", "/os-services/disable", host.clone())
        .await;
    assert_eq!(r["service"]["status"], json!("disabled"));

    let mut down = host.clone();
    down["forced_down"] = json!(true);
    let r = t
        .send(
            Some("compute 2.11"),
            "PUT",
            "/os-services/force-down",
            down.clone(),
        )
        .await;
    assert_eq!(
        r,
        json!({"service": {"host": "nubis-nova-b", "binary": "nova-compute", "forced_down": true}})
    );
    let l = t
        .get(Some("compute 2.11"), "/os-services?host=nubis-nova-b")
        .await;
    assert_eq!(
        (
            l["services"][0]["state"].clone(),
            l["services"][0]["forced_down"].clone()
        ),
        (json!("down"), json!(true))
    );

    // 2.53: by UUID, the full view back.
    let l = t.get(V253, "/os-services?host=nubis-nova-b").await;
    let sid = l["services"][0]["id"].as_str().unwrap().to_string();
    let r = t
        .send(
            V253,
            "PUT",
            &format!("/os-services/{sid}"),
            json!({"status": "enabled", "forced_down": false}),
        )
        .await;
    assert_eq!(r["service"]["status"], json!("enabled"));
    assert_eq!(r["service"]["state"], json!("up"));
    assert_eq!(r["service"]["id"], json!(sid));
    assert_eq!(r["service"]["zone"], json!("nova-b"));
    let r = t
        .send(
            V253,
            "PUT",
            &format!("/os-services/{sid}"),
            json!({"status": "disabled", "disabled_reason": "x"}),
        )
        .await;
    assert_eq!(r["service"]["disabled_reason"], json!("x"));
}

#[tokio::test]
async fn service_update_bad_inputs() {
    let (t, _d) = fresh().await;
    let host = json!({"host": "nubis-nova", "binary": "nova-compute"});
    #[rustfmt::skip]
    let refusals: &[Refusal] = &[
        (None, "PUT", "/os-services/reboot", Some(host.clone()), 404, "Unknown action"),
        // force-down exists from 2.11.
        (Some("compute 2.10"), "PUT", "/os-services/force-down", Some(host.clone()), 404, "Unknown action"),
        (None, "PUT", "/os-services/disable", Some(json!({"host": "nubis-control", "binary": "nova-scheduler"})), 400, "Updating a nova-scheduler service is not supported. Only nova-compute services can be updated."),
        (None, "PUT", "/os-services/disable", Some(json!({"host": "nowhere", "binary": "nova-compute"})), 404, "Could not find binary nova-compute on host nowhere."),
        (None, "PUT", "/os-services/disable-log-reason", Some(host.clone()), 400, "Missing disabled reason field"),
        (Some("compute 2.11"), "PUT", "/os-services/force-down", Some(host.clone()), 400, "Missing forced_down field"),
    ];
    t.refuses(refusals).await;
    assert_eq!(
        t.refused_ending(
            None,
            "PUT",
            "/os-services/disable",
            Some(json!({"host": "nubis-nova"})),
            "'binary' is a required property"
        )
        .await,
        400
    );
    t.refused_ending(
        None,
        "PUT",
        "/os-services/disable",
        Some(json!({"host": "nubis-nova", "binary": "nova-compute", "forced_down": true})),
        "Additional properties are not allowed ('forced_down' was unexpected)",
    )
    .await;
    let r = t
        .admin(
            None,
            "PUT",
            "/os-services/disable-log-reason",
            Some(json!({"host": "nubis-nova", "binary": "nova-compute", "disabled_reason": ""})),
        )
        .await;
    assert_eq!(fault(&r).0, 400);
    let r = t
        .admin(None, "PUT", "/os-services/enable", Some(json!([1])))
        .await;
    assert_eq!(fault(&r).0, 400);
    // 2.53.
    t.refused(
        V253,
        "PUT",
        "/os-services/enable",
        Some(json!({"status": "enabled"})),
        400,
        "Invalid uuid enable",
    )
    .await;
    let missing = "4a0b4ab4-6d2e-4a3e-9e3a-0a6a2b8d1f00";
    #[rustfmt::skip]
    let refusals: &[Refusal] = &[
        (V253, "PUT", &format!("/os-services/{missing}"), Some(json!({"status": "disabled"})), 404, &format!("Service {missing} not found.")),
        (V253, "PUT", &format!("/os-services/{missing}"), Some(json!({})), 400, "No updates were requested. Fields 'status' or 'forced_down' should be specified."),
        (V253, "PUT", &format!("/os-services/{missing}"), Some(json!({"status": "enabled", "disabled_reason": "x"})), 400, "Specifying 'disabled_reason' with status 'enabled' is invalid."),
    ];
    t.refuses(refusals).await;
    t.refused_ending(
        V253,
        "PUT",
        &format!("/os-services/{missing}"),
        Some(json!({"status": "off"})),
        "\"off\" is not one of ['enabled', 'disabled']",
    )
    .await;
    t.refused_ending(
        V253,
        "PUT",
        &format!("/os-services/{missing}"),
        Some(json!({"host": "h"})),
        "Additional properties are not allowed ('host' was unexpected)",
    )
    .await;
    let l = t.get(V253, "/os-services?binary=nova-scheduler").await;
    let sched = l["services"][0]["id"].as_str().unwrap();
    t.refused(V253, "PUT", &format!("/os-services/{sched}"), Some(json!({"status": "disabled"})), 400,
        "Updating a nova-scheduler service is not supported. Only nova-compute services can be updated.").await;
}

#[tokio::test]
async fn service_delete() {
    let (t, _d) = fresh().await;
    t.server().await;
    #[rustfmt::skip]
    let refusals: &[Refusal] = &[
        (None, "DELETE", "/os-services/3", None, 409, "Unable to delete compute service that is hosting instances. Migrate or delete the instances first."),
        (None, "DELETE", "/os-services/99", None, 404, "Service 99 not found."),
        (V253, "DELETE", "/os-services/3", None, 400, "Invalid uuid 3"),
    ];
    t.refuses(refusals).await;
    // The edge host leaves its aggregates and every view.
    let a = t.create_aggregate(None, json!({"name": "edge"})).await;
    let aid = a["aggregate"]["id"].clone();
    t.act(&aid, json!({"add_host": {"host": "nubis-edge"}}))
        .await;
    let r = t.admin(None, "DELETE", "/os-services/5", None).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let l = t.get(None, "/os-services").await;
    assert_eq!(l["services"].as_array().unwrap().len(), 4);
    let h = t.get(None, "/os-hypervisors").await;
    assert_eq!(h["hypervisors"].as_array().unwrap().len(), 2);
    let a = t.get(None, &format!("/os-aggregates/{aid}")).await;
    assert_eq!(a["aggregate"]["hosts"], json!([]));
    t.refused(
        None,
        "DELETE",
        "/os-services/5",
        None,
        404,
        "Service 5 not found.",
    )
    .await;
}

#[tokio::test]
async fn aggregates_crud_hosts_and_metadata() {
    let (t, _d) = fresh().await;
    let c = t.create_aggregate(None, json!({"name": "rack1"})).await;
    let agg = &c["aggregate"];
    assert_eq!(agg["id"], json!(1));
    assert_eq!(agg["availability_zone"], Value::Null);
    assert_eq!(agg["deleted"], json!(false));
    assert!(
        agg.get("hosts").is_none() && agg.get("metadata").is_none() && agg.get("uuid").is_none()
    );
    let s = t.get(None, "/os-aggregates/1").await;
    assert_eq!(
        (
            s["aggregate"]["hosts"].clone(),
            s["aggregate"]["metadata"].clone()
        ),
        (json!([]), json!({}))
    );
    let z = t
        .create_aggregate(
            Some("compute 2.41"),
            json!({"name": "zoned", "availability_zone": "az1"}),
        )
        .await;
    assert_eq!(z["aggregate"]["id"], json!(2));
    assert!(uuid::Uuid::try_parse(z["aggregate"]["uuid"].as_str().unwrap()).is_ok());
    let s = t.get(None, "/os-aggregates/2").await;
    assert_eq!(
        s["aggregate"]["metadata"],
        json!({"availability_zone": "az1"})
    );

    // Hosts: the zone follows the host into services and zone views.
    let add = |id: u32, host: &str| {
        (
            format!("/os-aggregates/{id}/action"),
            json!({"add_host": {"host": host}}),
        )
    };
    let (p, b) = add(2, "nubis-nova-b");
    let r = t.send(None, "POST", &p, b).await;
    assert_eq!(r["aggregate"]["hosts"], json!(["nubis-nova-b"]));
    let l = t.get(None, "/os-services?host=nubis-nova-b").await;
    assert_eq!(l["services"][0]["zone"], json!("az1"));
    let zones = t.get(None, "/os-availability-zone").await;
    let names: Vec<&str> = zones["availabilityZoneInfo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["zoneName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["nova", "nova-b", "edge", "az1"]);
    let (p, b) = add(1, "nubis-nova-b");
    t.send(None, "POST", &p, b).await;

    // Update name and zone; metadata merge and removal.
    let u = t
        .send(
            None,
            "PUT",
            "/os-aggregates/2",
            json!({"aggregate": {"name": "zoned2", "availability_zone": "az2"}}),
        )
        .await;
    assert_eq!(
        (
            u["aggregate"]["name"].clone(),
            u["aggregate"]["availability_zone"].clone()
        ),
        (json!("zoned2"), json!("az2"))
    );
    assert!(u["aggregate"]["updated_at"].is_string());
    let m = t
        .act(
            1,
            json!({"set_metadata": {"metadata": {"k": "v", "ssd": "true"}}}),
        )
        .await;
    assert_eq!(m["aggregate"]["metadata"], json!({"k": "v", "ssd": "true"}));
    let m = t
        .act(
            1,
            json!({"set_metadata": {"metadata": {"k": null, "gone": null}}}),
        )
        .await;
    assert_eq!(m["aggregate"]["metadata"], json!({"ssd": "true"}));
    let l = t.get(None, "/os-aggregates").await;
    assert_eq!(l["aggregates"].as_array().unwrap().len(), 2);

    // Remove, delete.
    let r = t
        .act(1, json!({"remove_host": {"host": "nubis-nova-b"}}))
        .await;
    assert_eq!(r["aggregate"]["hosts"], json!([]));
    let d = t.admin(None, "DELETE", "/os-aggregates/1", None).await;
    assert_eq!((d.status, d.body.clone()), (200, Value::Null));
    t.refused(
        None,
        "GET",
        "/os-aggregates/1",
        None,
        404,
        "Aggregate 1 could not be found.",
    )
    .await;
    // IDs are not reused.
    let c = t.create_aggregate(None, json!({"name": "rack1"})).await;
    assert_eq!(c["aggregate"]["id"], json!(3));
}

#[tokio::test]
async fn aggregate_bad_inputs() {
    let (t, _d) = fresh().await;
    t.create_aggregate(None, json!({"name": "a", "availability_zone": "az1"}))
        .await;
    t.create_aggregate(None, json!({"name": "b", "availability_zone": "az2"}))
        .await;
    #[rustfmt::skip]
    let refusals: &[Refusal] = &[
        (None, "POST", "/os-aggregates", Some(json!({"aggregate": {"name": "a"}})), 409, "Aggregate a already exists."),
        (None, "PUT", "/os-aggregates/2", Some(json!({"aggregate": {"name": "a"}})), 409, "Aggregate a already exists."),
    ];
    t.refuses(refusals).await;
    let long = "a".repeat(256);
    for (body, tail) in [
        (
            json!({"aggregate": {"name": ""}}),
            "\"\" is too short".to_string(),
        ),
        (
            json!({"aggregate": {"name": long}}),
            format!("\"{long}\" is too long"),
        ),
        (
            json!({"aggregate": {"name": " x"}}),
            "\" x\" does not match the name pattern".into(),
        ),
        (
            json!({"aggregate": {"name": "x", "availability_zone": "a:b"}}),
            "\"a:b\" does not match the name pattern".into(),
        ),
        (
            json!({"aggregate": {"name": 5}}),
            "5 is not of type 'string'".into(),
        ),
        (
            json!({"aggregate": {}}),
            "'name' is a required property".into(),
        ),
        (
            json!({"aggregate": {"name": "x", "bogus": 1}}),
            "Additional properties are not allowed ('bogus' was unexpected)".into(),
        ),
        (
            json!({"aggregates": {"name": "x"}}),
            "Additional properties are not allowed ('aggregates' was unexpected)".into(),
        ),
        (json!({}), "'aggregate' is a required property".into()),
    ] {
        let r = t
            .admin(None, "POST", "/os-aggregates", Some(body.clone()))
            .await;
        assert_eq!(fault(&r).0, 400, "{body}");
        assert!(fault(&r).2.ends_with(&tail), "{body}: {}", fault(&r).2);
    }
    let r = t
        .admin(
            None,
            "PUT",
            "/os-aggregates/1",
            Some(json!({"aggregate": {}})),
        )
        .await;
    assert_eq!(fault(&r).0, 400);
    for (method, path) in [
        ("GET", "/os-aggregates/-1"),
        ("DELETE", "/os-aggregates/-1"),
        ("GET", "/os-aggregates/77"),
    ] {
        let id = path.rsplit('/').next().unwrap();
        t.refused(
            None,
            method,
            path,
            None,
            404,
            &format!("Aggregate {id} could not be found."),
        )
        .await;
    }
    #[rustfmt::skip]
    let refusals: &[Refusal] = &[
        (None, "GET", "/os-aggregates/abc", None, 400, "Invalid input received: id must be an integer"),
        (None, "PUT", "/os-aggregates/abc", Some(json!({"aggregate": {"name": "z"}})), 400, "Invalid input received: id must be an integer"),
    ];
    t.refuses(refusals).await;
    let act = "/os-aggregates/1/action";
    #[rustfmt::skip]
    let refusals: &[Refusal] = &[
        (None, "POST", act, Some(json!({"add_host": {"host": "nonexist_host"}})), 404, "Compute host nonexist_host could not be found."),
        (None, "POST", act, Some(json!({"remove_host": {"host": "nubis-nova"}})), 404, "Cannot remove host nubis-nova in aggregate 1"),
        (None, "POST", "/os-aggregates/9/action", Some(json!({"add_host": {"host": "nubis-nova"}})), 404, "Aggregate 9 could not be found."),
        (None, "POST", act, Some(json!({"bogus": {}})), 400, "There is no such action: bogus"),
        (None, "POST", act, Some(json!({"reboot": {}})), 400, "There is no such action: reboot"),
    ];
    t.refuses(refusals).await;
    t.send(
        None,
        "POST",
        act,
        json!({"add_host": {"host": "nubis-nova"}}),
    )
    .await;
    #[rustfmt::skip]
    let refusals: &[Refusal] = &[
        (None, "POST", act, Some(json!({"add_host": {"host": "nubis-nova"}})), 409, "Aggregate 1 already has host nubis-nova."),
        // A host is in one zone at most.
        (None, "POST", "/os-aggregates/2/action", Some(json!({"add_host": {"host": "nubis-nova"}})), 409, "Cannot add host to aggregate 2. Reason: One or more hosts already in availability zone(s) ['az1']."),
    ];
    t.refuses(refusals).await;
    t.act(2, json!({"add_host": {"host": "nubis-edge"}})).await;
    // Its own hosts are in no other zone: the zone may change.
    let u = t
        .send(
            None,
            "PUT",
            "/os-aggregates/2",
            json!({"aggregate": {"availability_zone": "az9"}}),
        )
        .await;
    assert_eq!(u["aggregate"]["availability_zone"], json!("az9"));
    t.refused(
        None,
        "DELETE",
        "/os-aggregates/1",
        None,
        400,
        "Cannot remove aggregate 1. Reason: Host aggregate is not empty.",
    )
    .await;
    t.create_aggregate(None, json!({"name": "c"})).await;
    t.act(3, json!({"add_host": {"host": "nubis-nova"}})).await;
    #[rustfmt::skip]
    let refusals: &[Refusal] = &[
        (None, "PUT", "/os-aggregates/3", Some(json!({"aggregate": {"availability_zone": "az9"}})), 400, "Cannot update aggregate 3. Reason: One or more hosts already in availability zone(s) ['az1']."),
        (None, "POST", "/os-aggregates/3/action", Some(json!({"set_metadata": {"metadata": {"availability_zone": "az9"}}})), 400, "Cannot update metadata of aggregate 3. Reason: One or more hosts already in availability zone(s) ['az1']."),
        (None, "POST", "/os-aggregates/3/action", Some(json!({"set_metadata": {"metadata": {"availability_zone": ""}}})), 400, "Cannot update metadata of aggregate 3. Reason: Aggregate c does not support empty named availability zone."),
    ];
    t.refuses(refusals).await;
    for (arg, tail) in [
        (
            json!({"set_metadata": {"metadata": {"bad/key": "v"}}}),
            "Additional properties are not allowed ('bad/key' was unexpected)",
        ),
        (
            json!({"set_metadata": {"metadata": {"k": 1}}}),
            "1 is not of type 'string', 'null'",
        ),
        (
            json!({"set_metadata": {}}),
            "'metadata' is a required property",
        ),
        (json!({"add_host": {}}), "'host' is a required property"),
        (
            json!({"add_host": {"host": "nubis-nova", "x": 1}}),
            "Additional properties are not allowed ('x' was unexpected)",
        ),
        (
            json!({"remove_host": "nubis-nova"}),
            "\"nubis-nova\" is not of type 'object'",
        ),
    ] {
        let r = t.admin(None, "POST", act, Some(arg.clone())).await;
        assert_eq!(fault(&r).0, 400, "{arg}");
        assert!(fault(&r).2.ends_with(tail), "{arg}: {}", fault(&r).2);
    }
}

#[tokio::test]
async fn tenant_usage_from_launch_times() {
    let (t, _d) = fresh().await;
    let server = t.server().await;
    let project = server["tenant_id"].as_str().unwrap().to_string();
    let q = "start=2020-01-01T00:00:00&end=2999-01-01T00:00:00.000000";
    let l = t
        .get(None, &format!("/os-simple-tenant-usage?{q}&detailed=1"))
        .await;
    let u = &l["tenant_usages"][0];
    assert_eq!(u.as_object().unwrap().len(), 8, "{u}");
    assert_eq!(u["tenant_id"], json!(project));
    let su = &u["server_usages"][0];
    assert_eq!(su["instance_id"], server["id"]);
    assert_eq!(
        (
            su["vcpus"].clone(),
            su["memory_mb"].clone(),
            su["flavor"].clone()
        ),
        (json!(1), json!(2048), json!("S5.SMALL2"))
    );
    assert_eq!(su["state"], json!("active"));
    assert_eq!(su["ended_at"], Value::Null);
    assert!(su["hours"].as_f64().unwrap() >= 0.0);
    let l = t.get(None, &format!("/os-simple-tenant-usage?{q}")).await;
    assert_eq!(l["tenant_usages"][0].as_object().unwrap().len(), 7);
    let s = t
        .get(None, &format!("/os-simple-tenant-usage/{project}?{q}"))
        .await;
    assert_eq!(s["tenant_usage"].as_object().unwrap().len(), 8);
    // A window before the server: nothing.
    let s = t
        .get(None, &format!("/os-simple-tenant-usage/{project}?start=2020-01-01 00:00:00.0&end=2020-01-02T00:00:00"))
        .await;
    assert_eq!(s, json!({"tenant_usage": {}}));
    let s = t
        .get(None, &format!("/os-simple-tenant-usage/nobody?{q}"))
        .await;
    assert_eq!(s, json!({"tenant_usage": {}}));
    // Paging from 2.40 over the servers: limit, the next link, marker.
    let second = t.server().await;
    let v240 = Some("compute 2.40");
    let p = t
        .get(
            v240,
            &format!("/os-simple-tenant-usage?{q}&detailed=1&limit=1"),
        )
        .await;
    assert_eq!(
        p["tenant_usages"][0]["server_usages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let next = p["tenant_usages_links"][0]["href"].as_str().unwrap();
    let marker = next.rsplit("marker=").next().unwrap();
    assert_eq!(marker, server["id"].as_str().unwrap());
    let p = t
        .get(
            v240,
            &format!("/os-simple-tenant-usage/{project}?{q}&marker={marker}"),
        )
        .await;
    assert_eq!(
        p["tenant_usage"]["server_usages"][0]["instance_id"],
        second["id"]
    );
    assert!(p.get("tenant_usage_links").is_none());
    #[rustfmt::skip]
    let refusals: &[Refusal] = &[
        (v240, "GET", &format!("/os-simple-tenant-usage?{q}&marker=nope"), None, 400, "marker [nope] not found"),
        (v240, "GET", &format!("/os-simple-tenant-usage?{q}&limit=-1"), None, 400, "Invalid input for query parameters limit. Value: -1. -1 is less than the minimum of 0"),
        // Bad windows.
        (None, "GET", "/os-simple-tenant-usage?start=2999-01-01T00:00:00&end=2020-01-01T00:00:00", None, 400, "Invalid start time. The start time cannot occur after the end time."),
        (None, "GET", "/os-simple-tenant-usage", None, 400, "Invalid start time. The start time cannot occur after the end time."),
        (None, "GET", &format!("/os-simple-tenant-usage/{project}?start=yesterday"), None, 400, "Invalid datetime string: Datetime is in invalid format"),
        (Some("compute 2.75"), "GET", &format!("/os-simple-tenant-usage?{q}&bogus=1"), None, 400, "Invalid input for query parameters bogus. Value: bogus. Additional properties are not allowed ('bogus' was unexpected)"),
    ];
    t.refuses(refusals).await;
}

/// Service states and aggregates are store records: a restart over the same store shows them.
#[tokio::test]
async fn operator_changes_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = nubis_testkit::engine_in(dir.path(), 0.0, None, Some(PASSWORD)).await;
        let t = T::new(e).await;
        t.send(
            None,
            "PUT",
            "/os-services/disable-log-reason",
            json!({"host": "nubis-edge", "binary": "nova-compute", "disabled_reason": "flaky"}),
        )
        .await;
        t.create_aggregate(None, json!({"name": "keep", "availability_zone": "kz"}))
            .await;
        t.act(1, json!({"add_host": {"host": "nubis-edge"}})).await;
        t.act(1, json!({"set_metadata": {"metadata": {"k": "v"}}}))
            .await;
    }
    let e = nubis_testkit::engine_in(dir.path(), 0.0, None, Some(PASSWORD)).await;
    let t = T::new(e).await;
    let l = t.get(None, "/os-services?host=nubis-edge").await;
    assert_eq!(l["services"][0]["status"], json!("disabled"));
    assert_eq!(l["services"][0]["disabled_reason"], json!("flaky"));
    assert_eq!(l["services"][0]["zone"], json!("kz"));
    let a = t.get(None, "/os-aggregates/1").await;
    assert_eq!(a["aggregate"]["hosts"], json!(["nubis-edge"]));
    assert_eq!(
        a["aggregate"]["metadata"],
        json!({"availability_zone": "kz", "k": "v"})
    );
    // The sequence survives too.
    let c = t.create_aggregate(None, json!({"name": "next"})).await;
    assert_eq!(c["aggregate"]["id"], json!(2));
}

/// A zone an aggregate gives a host is a zone servers can be created in: the server lands on
/// that host, and every server on the host shows the aggregate's zone, as Nova computes it.
#[tokio::test]
async fn an_aggregate_zone_places_servers_on_its_host() {
    let (t, _d) = fresh().await;
    let image = openstack::debian_image(&t.api, &[("x-auth-token", &t.admin)]).await;
    let create = |az: &str| json!({"name": "z", "imageRef": image, "flavorRef": "S5.SMALL2", "availability_zone": az});
    let h = [("x-auth-token", t.admin.as_str())];
    let r = openstack::create_server(&t.api, &h, create("rackaz")).await;
    assert_eq!(
        fault(&r),
        (
            400,
            "badRequest",
            "The requested availability zone is not available"
        )
    );
    t.create_aggregate(None, json!({"name": "rack", "availability_zone": "rackaz"}))
        .await;
    // A zoned aggregate with no host places nothing.
    let r = openstack::create_server(&t.api, &h, create("rackaz")).await;
    assert_eq!(r.status, 400, "{}", r.body);
    t.act(1, json!({"add_host": {"host": "nubis-nova-b"}}))
        .await;
    let r = openstack::create_server(&t.api, &h, create("rackaz")).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    let s = openstack::wait_status(&t.api, &t.admin, &id, "ACTIVE").await;
    assert_eq!(s["OS-EXT-SRV-ATTR:host"], json!("nubis-nova-b"));
    assert_eq!(s["OS-EXT-AZ:availability_zone"], json!("rackaz"));
    // A server created in the catalog zone of that host shows the aggregate's zone too.
    let r = openstack::create_server(&t.api, &h, create("nova-b")).await;
    let other = r.body["server"]["id"].as_str().unwrap().to_string();
    let s = openstack::wait_status(&t.api, &t.admin, &other, "ACTIVE").await;
    assert_eq!(s["OS-EXT-AZ:availability_zone"], json!("rackaz"));
    t.act(1, json!({"remove_host": {"host": "nubis-nova-b"}}))
        .await;
    let s = t.get(None, &format!("/servers/{other}")).await;
    assert_eq!(s["server"]["OS-EXT-AZ:availability_zone"], json!("nova-b"));
}
