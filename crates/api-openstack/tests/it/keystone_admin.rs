//! The Keystone v3 admin API and project-scoped Nova, through `OpenStackApi::handle`
//! (docs/identity.md, "Keystone v3 admin API"): directory CRUD with Keystone's codes,
//! policy refusals, grants and role assignments, application credentials, token
//! validation, two projects against Nova, and the directory surviving a restart.

use nubis_api_openstack::OpenStackApi;
use nubis_testkit::PASSWORD;
use serde_json::{Value, json};

struct Api {
    api: OpenStackApi,
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        subject: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Vec<(String, String)>, Value) {
        let mut headers = vec![("content-type", "application/json")];
        headers.extend(token.map(|t| ("x-auth-token", t)));
        headers.extend(subject.map(|s| ("x-subject-token", s)));
        let r =
            nubis_testkit::openstack::call(&self.api, method, path, &headers, body.cloned()).await;
        (r.status, r.headers, r.body)
    }

    async fn get(&self, path: &str, t: &str) -> (u16, Value) {
        let (s, _, j) = self.call("GET", path, Some(t), None, None).await;
        (s, j)
    }

    async fn send(&self, method: &str, path: &str, t: &str, body: Value) -> (u16, Value) {
        let (s, _, j) = self.call(method, path, Some(t), None, Some(&body)).await;
        (s, j)
    }

    async fn status(&self, method: &str, path: &str, t: &str) -> u16 {
        self.call(method, path, Some(t), None, None).await.0
    }

    /// Each `(method, path, status)` with token `t`, in order.
    async fn statuses(&self, t: &str, cases: &[(&str, &str, u16)]) {
        for (method, path, want) in cases {
            assert_eq!(self.status(method, path, t).await, *want, "{method} {path}");
        }
    }

    /// `send`, asserting the status; the body.
    async fn sent(&self, method: &str, path: &str, t: &str, body: Value, want: u16) -> Value {
        let (s, j) = self.send(method, path, t, body).await;
        assert_eq!(s, want, "{method} {path}: {j}");
        j
    }

    /// A token: `(status, token id, body)`.
    async fn login(
        &self,
        user: &str,
        password: &str,
        project: Option<&str>,
    ) -> (u16, String, Value) {
        let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}}});
        if let Some(p) = project {
            auth["scope"] = json!({"project": {"name": p, "domain": {"name": "Default"}}});
        }
        let (s, h, j) = self
            .call(
                "POST",
                "/identity/v3/auth/tokens",
                None,
                None,
                Some(&json!({"auth": auth})),
            )
            .await;
        let id = h
            .into_iter()
            .find(|(k, _)| k == "x-subject-token")
            .map(|(_, v)| v)
            .unwrap_or_default();
        (s, id, j)
    }

    async fn token(&self, user: &str, password: &str, project: &str) -> String {
        let (s, id, j) = self.login(user, password, Some(project)).await;
        assert_eq!(s, 201, "{user}@{project}: {j}");
        id
    }
}

async fn api_in(dir: &std::path::Path) -> Api {
    let engine = nubis_testkit::engine_in(dir, 0.0, None, Some(PASSWORD)).await;
    Api {
        api: OpenStackApi::new(engine, false),
    }
}

/// A fresh API on its own directory and the bootstrap admin's token on project `admin`.
async fn fresh() -> (tempfile::TempDir, Api, String) {
    let dir = tempfile::tempdir().unwrap();
    let a = api_in(dir.path()).await;
    let admin = a.token("admin", PASSWORD, "admin").await;
    (dir, a, admin)
}

/// The ID of the role named `name`.
async fn role_id(a: &Api, admin: &str, name: &str) -> String {
    let (_, roles) = a
        .get(&format!("/identity/v3/roles?name={name}"), admin)
        .await;
    roles["roles"][0]["id"].as_str().unwrap().to_string()
}

const PW: &str = "Keystone-Pw-1234";

/// A project, a user with `role` on it; returns (project id, user id).
async fn member(a: &Api, admin: &str, project: &str, user: &str, role: &str) -> (String, String) {
    let (s, p) = a
        .send(
            "POST",
            "/identity/v3/projects",
            admin,
            json!({"project": {"name": project, "domain_id": "default"}}),
        )
        .await;
    let pid = if s == 201 {
        p["project"]["id"].as_str().unwrap().to_string()
    } else {
        let (_, l) = a
            .get(&format!("/identity/v3/projects?name={project}"), admin)
            .await;
        l["projects"][0]["id"].as_str().unwrap().to_string()
    };
    let (s, u) = a
        .send(
            "POST",
            "/identity/v3/users",
            admin,
            json!({"user": {"name": user, "domain_id": "default", "password": PW}}),
        )
        .await;
    assert_eq!(s, 201, "{u}");
    let uid = u["user"]["id"].as_str().unwrap().to_string();
    let rid = role_id(a, admin, role).await;
    let s = a
        .status(
            "PUT",
            &format!("/identity/v3/projects/{pid}/users/{uid}/roles/{rid}"),
            admin,
        )
        .await;
    assert_eq!(s, 204);
    (pid, uid)
}

#[tokio::test]
async fn directory_crud_with_keystones_codes() {
    let (_dir, a, admin) = fresh().await;
    // Create, duplicate, bad input.
    let d = a
        .sent(
            "POST",
            "/identity/v3/domains",
            &admin,
            json!({"domain": {"name": "dom1", "description": "d", "tags": []}}),
            201,
        )
        .await;
    let did = d["domain"]["id"].as_str().unwrap().to_string();
    assert_eq!(did.len(), 32);
    let e = a
        .sent(
            "POST",
            "/identity/v3/domains",
            &admin,
            json!({"domain": {"name": "dom1"}}),
            409,
        )
        .await;
    assert_eq!(e["error"]["title"], "Conflict");
    a.sent(
        "POST",
        "/identity/v3/domains",
        &admin,
        json!({"domain": {"name": "x".repeat(65)}}),
        400,
    )
    .await;
    a.sent(
        "POST",
        "/identity/v3/projects",
        &admin,
        json!({"project": {}}),
        400,
    )
    .await;
    let e = a
        .sent(
            "POST",
            "/identity/v3/projects",
            &admin,
            json!({"project": {"name": "p", "domain_id": "nope"}}),
            404,
        )
        .await;
    assert_eq!(e["error"]["message"], "Could not find domain: nope.");
    a.sent(
        "POST",
        "/identity/v3/users",
        &admin,
        json!({"user": {"name": 5}}),
        400,
    )
    .await;
    assert_eq!(
        a.status("POST", "/identity/v3/users", &admin).await,
        400,
        "no body"
    );
    // Lookups by name answer 404 by ID, then one hit by ?name=.
    assert_eq!(
        a.status("GET", "/identity/v3/domains/dom1", &admin).await,
        404
    );
    let (s, l) = a.get("/identity/v3/domains?name=dom1", &admin).await;
    assert_eq!((s, l["domains"].as_array().map(Vec::len)), (200, Some(1)));
    let (s, l) = a
        .get("/identity/v3/domains/default?domain_id=x", &admin)
        .await;
    assert_eq!((s, l["domain"]["name"].as_str()), (200, Some("Default")));
    // A project and user in the new domain; an enabled domain is not deleted.
    let p = a
        .sent(
            "POST",
            "/identity/v3/projects",
            &admin,
            json!({"project": {"name": "p1", "domain_id": did}}),
            201,
        )
        .await;
    assert_eq!(p["project"]["parent_id"], json!(did));
    let pid = p["project"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        a.status("DELETE", &format!("/identity/v3/domains/{did}"), &admin)
            .await,
        403
    );
    a.sent(
        "PATCH",
        &format!("/identity/v3/domains/{did}"),
        &admin,
        json!({"domain": {"enabled": false}}),
        200,
    )
    .await;
    a.statuses(
        &admin,
        &[
            // Keystone cascades: the domain's projects go with it.
            ("DELETE", &format!("/identity/v3/domains/{did}"), 204),
            ("GET", &format!("/identity/v3/domains/{did}"), 404),
            ("GET", &format!("/identity/v3/projects/{pid}"), 404),
        ],
    )
    .await;
    // The built-ins stay.
    assert_eq!(
        a.status("DELETE", "/identity/v3/domains/default", &admin)
            .await,
        403
    );
    let (_, users) = a.get("/identity/v3/users?name=admin", &admin).await;
    let admin_id = users["users"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        a.status("DELETE", &format!("/identity/v3/users/{admin_id}"), &admin)
            .await,
        403
    );
    // Never a password in a user.
    let (_, uid) = member(&a, &admin, "p2", "alice", "member").await;
    let (s, u) = a.get(&format!("/identity/v3/users/{uid}"), &admin).await;
    assert_eq!(s, 200);
    assert!(
        u["user"].get("password").is_none() && !u.to_string().contains("$6$"),
        "{u}"
    );
}

#[tokio::test]
async fn policy_grants_assignments_and_tokens() {
    let (_dir, a, admin) = fresh().await;
    let (pid, uid) = member(&a, &admin, "proj", "bob", "reader").await;
    let bob = a.token("bob", PW, "proj").await;
    // A reader administers nothing, but sees itself and its project.
    let (s, e) = a.get("/identity/v3/users", &bob).await;
    assert_eq!(s, 403, "{e}");
    assert_eq!(
        e["error"]["message"],
        "You are not authorized to perform the requested action: identity:list_users."
    );
    a.statuses(
        &bob,
        &[
            ("GET", &format!("/identity/v3/users/{uid}"), 200),
            ("GET", &format!("/identity/v3/projects/{pid}"), 200),
            ("GET", &format!("/identity/v3/users/{uid}/projects"), 200),
        ],
    )
    .await;
    a.sent(
        "POST",
        "/identity/v3/projects",
        &bob,
        json!({"project": {"name": "x"}}),
        403,
    )
    .await;
    // Groups: a domain grant through a group; effective assignments expand it.
    let (_, g) = a
        .send(
            "POST",
            "/identity/v3/groups",
            &admin,
            json!({"group": {"name": "g1"}}),
        )
        .await;
    let gid = g["group"]["id"].as_str().unwrap().to_string();
    a.statuses(
        &admin,
        &[
            (
                "PUT",
                &format!("/identity/v3/groups/{gid}/users/{uid}"),
                204,
            ),
            (
                "HEAD",
                &format!("/identity/v3/groups/{gid}/users/{uid}"),
                204,
            ),
        ],
    )
    .await;
    let (_, r) = a.get("/identity/v3/roles?name=member", &admin).await;
    let member_role = r["roles"][0]["id"].as_str().unwrap().to_string();
    let grant = format!("/identity/v3/domains/default/groups/{gid}/roles/{member_role}");
    a.statuses(&admin, &[("PUT", &grant, 204), ("HEAD", &grant, 204)])
        .await;
    let (s, l) = a
        .get(
            &format!("/identity/v3/role_assignments?user.id={uid}&effective&include_names=True"),
            &admin,
        )
        .await;
    assert_eq!(s, 200);
    let list = l["role_assignments"].as_array().unwrap();
    assert!(
        list.iter()
            .any(|x| x["scope"]["domain"]["id"] == "default" && x["role"]["name"] == "member"),
        "{l}"
    );
    assert!(
        list.iter()
            .any(|x| x["scope"]["project"]["name"] == "proj" && x["user"]["name"] == "bob"),
        "{l}"
    );
    a.statuses(
        &admin,
        &[
            ("DELETE", &grant, 204),
            ("DELETE", &grant, 404),
            (
                "DELETE",
                &format!("/identity/v3/groups/{gid}/users/{uid}"),
                204,
            ),
        ],
    )
    .await;
    // Token validation: admin any, others their own; D20.
    let tok = "/identity/v3/auth/tokens";
    assert_eq!(
        a.call("GET", tok, Some(&admin), Some(&bob), None).await.0,
        200
    );
    assert_eq!(
        a.call("GET", tok, Some(&bob), Some(&bob), None).await.0,
        200
    );
    assert_eq!(
        a.call("GET", tok, Some(&bob), Some(&admin), None).await.0,
        403
    );
    assert_eq!(a.call("GET", tok, Some(&admin), None, None).await.0, 400);
    // Disabling the user kills its tokens; a wrong password is 401.
    a.sent(
        "PATCH",
        &format!("/identity/v3/users/{uid}"),
        &admin,
        json!({"user": {"enabled": false}}),
        200,
    )
    .await;
    assert_eq!(
        a.call("GET", tok, Some(&admin), Some(&bob), None).await.0,
        404
    );
    assert_eq!(a.login("bob", PW, Some("proj")).await.0, 401);
    // Deleting it removes its grants.
    assert_eq!(
        a.status("DELETE", &format!("/identity/v3/users/{uid}"), &admin)
            .await,
        204
    );
    let (_, l) = a
        .get(
            &format!("/identity/v3/role_assignments?user.id={uid}"),
            &admin,
        )
        .await;
    assert_eq!(l["role_assignments"], json!([]));
}

#[tokio::test]
async fn application_credentials() {
    let (_dir, a, admin) = fresh().await;
    let (pid, uid) = member(&a, &admin, "acp", "carol", "member").await;
    let carol = a.token("carol", PW, "acp").await;
    let path = format!("/identity/v3/users/{uid}/application_credentials");
    // A role carol does not hold.
    a.sent(
        "POST",
        &path,
        &carol,
        json!({"application_credential": {"name": "x", "roles": [{"name": "admin"}]}}),
        403,
    )
    .await;
    // Past expiry (D18).
    a.sent(
        "POST",
        &path,
        &carol,
        json!({"application_credential": {"name": "x", "expires_at": "2000-01-01T00:00:00"}}),
        400,
    )
    .await;
    let c = a.sent("POST", &path, &carol, json!({"application_credential": {
            "name": "ac1", "roles": [{"name": "member"}], "expires_at": "2099-01-01T00:00:00.250000"}}), 201).await;
    let ac = &c["application_credential"];
    assert_eq!(ac["project_id"], json!(pid));
    assert_eq!(ac["expires_at"], "2099-01-01T00:00:00.250000");
    let secret = ac["secret"].as_str().unwrap().to_string();
    let id = ac["id"].as_str().unwrap().to_string();
    // Only the owner creates; the secret is never shown again.
    a.sent(
        "POST",
        &path,
        &admin,
        json!({"application_credential": {"name": "y"}}),
        403,
    )
    .await;
    let (_, shown) = a.get(&format!("{path}/{id}"), &carol).await;
    assert!(shown["application_credential"].get("secret").is_none());
    // Authenticate with it: scoped to its project with its roles.
    let auth = |secret: &str| {
        json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"id": id, "secret": secret}}}})
    };
    let (s, h, t) = a
        .call(
            "POST",
            "/identity/v3/auth/tokens",
            None,
            None,
            Some(&auth(&secret)),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    assert_eq!(t["token"]["project"]["id"], json!(pid));
    assert_eq!(t["token"]["application_credential"]["id"], json!(id));
    let ac_token = h
        .into_iter()
        .find(|(k, _)| k == "x-subject-token")
        .unwrap()
        .1;
    assert_eq!(
        a.status("GET", "/compute/v2.1/servers", &ac_token).await,
        200
    );
    assert_eq!(
        a.call(
            "POST",
            "/identity/v3/auth/tokens",
            None,
            None,
            Some(&auth("nope"))
        )
        .await
        .0,
        401
    );
    // Deleting it kills its tokens.
    assert_eq!(
        a.status("DELETE", &format!("{path}/{id}"), &carol).await,
        204
    );
    assert_eq!(
        a.status("GET", "/compute/v2.1/servers", &ac_token).await,
        401
    );
    assert_eq!(
        a.call(
            "POST",
            "/identity/v3/auth/tokens",
            None,
            None,
            Some(&auth(&secret))
        )
        .await
        .0,
        401
    );
}

#[tokio::test]
async fn nova_is_scoped_to_projects_and_roles() {
    let (_dir, a, admin) = fresh().await;
    member(&a, &admin, "pa", "ua", "member").await;
    member(&a, &admin, "pb", "ub", "member").await;
    member(&a, &admin, "pa", "ur", "reader").await;
    let (ua, ub, ur) = (
        a.token("ua", PW, "pa").await,
        a.token("ub", PW, "pb").await,
        a.token("ur", PW, "pa").await,
    );
    let create =
        json!({"server": {"name": "in-a", "imageRef": "img-deb12x64", "flavorRef": "S5.SMALL2"}});
    let (s, c) = a
        .send("POST", "/compute/v2.1/servers", &ua, create.clone())
        .await;
    assert_eq!(s, 202, "{c}");
    let id = c["server"]["id"].as_str().unwrap().to_string();
    let show = format!("/compute/v2.1/servers/{id}");
    let action = format!("{show}/action");
    let (s, v) = a.get(&show, &ua).await;
    assert_eq!(s, 200);
    let pa = v["server"]["tenant_id"].as_str().unwrap().to_string();
    // Member of B: 404 on show, actions and delete; not listed; all_tenants refused.
    assert_eq!(a.status("GET", &show, &ub).await, 404);
    assert_eq!(
        a.send("POST", &action, &ub, json!({"reboot": {"type": "SOFT"}}))
            .await
            .0,
        404
    );
    assert_eq!(a.status("DELETE", &show, &ub).await, 404);
    let (_, l) = a.get("/compute/v2.1/servers", &ub).await;
    assert_eq!(l["servers"], json!([]));
    assert_eq!(
        a.status("GET", "/compute/v2.1/servers?all_tenants=1", &ub)
            .await,
        403
    );
    // Reader of A: reads, refused writes (403, Nova's policy message).
    assert_eq!(a.status("GET", &show, &ur).await, 200);
    let e = a
        .sent(
            "POST",
            &action,
            &ur,
            json!({"reboot": {"type": "SOFT"}}),
            403,
        )
        .await;
    assert_eq!(
        e["forbidden"]["message"],
        "Policy doesn't allow os_compute_api:servers:reboot to be performed."
    );
    assert_eq!(a.status("DELETE", &show, &ur).await, 403);
    assert_eq!(
        a.send("POST", "/compute/v2.1/servers", &ur, create).await.0,
        403
    );
    // The admin: own project by default, every project with all_tenants, narrowed by project.
    let (_, l) = a.get("/compute/v2.1/servers", &admin).await;
    assert!(!l.to_string().contains(&id));
    let (_, l) = a.get("/compute/v2.1/servers?all_tenants=1", &admin).await;
    assert!(l.to_string().contains(&id));
    let (_, l) = a
        .get(
            &format!("/compute/v2.1/servers?all_tenants=1&project_id={pa}"),
            &admin,
        )
        .await;
    assert_eq!(l["servers"].as_array().map(Vec::len), Some(1), "{l}");
    // `host` (admin-only, Nova's allow_all_filters): the servers on that compute host; a
    // non-admin's `host` is ignored.
    let (_, l) = a
        .get("/compute/v2.1/servers?all_tenants=1&host=elsewhere", &admin)
        .await;
    assert!(!l.to_string().contains(&id), "{l}");
    let (_, l) = a.get("/compute/v2.1/servers?host=elsewhere", &ua).await;
    assert!(l.to_string().contains(&id), "{l}");
    let (_, v) = a.get(&show, &admin).await;
    if let Some(host) = v["server"]["OS-EXT-SRV-ATTR:host"].as_str() {
        let (_, l) = a
            .get(
                &format!("/compute/v2.1/servers?all_tenants=1&host={host}"),
                &admin,
            )
            .await;
        assert!(l.to_string().contains(&id), "{l}");
    }
    assert_eq!(a.status("GET", &show, &admin).await, 200);
    // injectNetworkInfo is the admin's (os-admin-actions), on any project's server.
    let inject = json!({"injectNetworkInfo": null});
    assert_eq!(a.send("POST", &action, &ua, inject.clone()).await.0, 403);
    assert_eq!(a.send("POST", &action, &admin, inject).await.0, 202);
    // A project with servers is not deleted.
    assert_eq!(
        a.status("DELETE", &format!("/identity/v3/projects/{pa}"), &admin)
            .await,
        409
    );
}

#[tokio::test]
async fn the_directory_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (pid, uid) = {
        let a = api_in(dir.path()).await;
        let admin = a.token("admin", PASSWORD, "admin").await;
        let (_, r) = a
            .send(
                "POST",
                "/identity/v3/roles",
                &admin,
                json!({"role": {"name": "custom"}}),
            )
            .await;
        assert_eq!(r["role"]["name"], "custom");
        member(&a, &admin, "durable", "dave", "custom").await
    };
    let a = api_in(dir.path()).await;
    let (s, dave, _) = a.login("dave", PW, Some("durable")).await;
    assert_eq!(s, 201);
    let (s, u) = a.get(&format!("/identity/v3/users/{uid}"), &dave).await;
    assert_eq!(
        (s, u["user"]["default_project_id"].clone()),
        (200, Value::Null)
    );
    let admin = a.token("admin", PASSWORD, "admin").await;
    let (_, l) = a
        .get(
            &format!("/identity/v3/projects/{pid}/users/{uid}/roles"),
            &admin,
        )
        .await;
    assert_eq!(l["roles"][0]["name"], "custom", "{l}");
}

/// Deleting a role assignment kills the user's tokens that carry the role on that project
/// (Keystone revokes them); a token on another project, and a new login with the roles
/// left, work.
#[tokio::test]
async fn removing_a_role_revokes_the_tokens_that_carry_it() {
    let (_dir, a, admin) = fresh().await;
    let (pa, uid) = member(&a, &admin, "ra", "rita", "member").await;
    let (pb, _) = member(&a, &admin, "rb", "rolf", "member").await;
    let member_role = role_id(&a, &admin, "member").await;
    let reader_role = role_id(&a, &admin, "reader").await;
    let grant = |p: &str, r: &str| format!("/identity/v3/projects/{p}/users/{uid}/roles/{r}");
    // rita: member on ra and on rb, reader on ra.
    a.statuses(
        &admin,
        &[
            ("PUT", &grant(&pb, &member_role), 204),
            ("PUT", &grant(&pa, &reader_role), 204),
        ],
    )
    .await;
    let on_a = a.token("rita", PW, "ra").await;
    let on_b = a.token("rita", PW, "rb").await;
    let servers = "/compute/v2.1/servers";
    assert_eq!(a.status("GET", servers, &on_a).await, 200);
    a.statuses(&admin, &[("DELETE", &grant(&pa, &member_role), 204)])
        .await;
    assert_eq!(
        a.status("GET", servers, &on_a).await,
        401,
        "the token carried member on ra"
    );
    let (s, _, _) = a
        .call(
            "GET",
            "/identity/v3/auth/tokens",
            Some(&admin),
            Some(&on_a),
            None,
        )
        .await;
    assert_eq!(s, 404, "validation finds no such token");
    assert_eq!(
        a.status("GET", servers, &on_b).await,
        200,
        "member on rb still held"
    );
    let again = a.token("rita", PW, "ra").await;
    assert_eq!(
        a.status("GET", servers, &again).await,
        200,
        "reader on ra is left"
    );
}

/// Nova key pairs belong to the Keystone user who made them: another user of the same
/// project neither lists, shows nor deletes them; names stay unique in the account.
#[tokio::test]
async fn nova_key_pairs_belong_to_their_user() {
    let (_dir, a, admin) = fresh().await;
    let (_, kim_id) = member(&a, &admin, "ka", "kim", "member").await;
    member(&a, &admin, "ka", "kai", "member").await;
    let (kim, kai) = (
        a.token("kim", PW, "ka").await,
        a.token("kai", PW, "ka").await,
    );
    let keys = "/compute/v2.1/os-keypairs";
    let made = a
        .sent(
            "POST",
            keys,
            &kim,
            json!({"keypair": {"name": "kims"}}),
            200,
        )
        .await;
    assert_eq!(made["keypair"]["user_id"], json!(kim_id));
    let names = |l: &Value| -> Vec<String> {
        l["keypairs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["keypair"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, l) = a.get(keys, &kim).await;
    assert_eq!(names(&l), ["kims"]);
    let (s, shown) = a.get(&format!("{keys}/kims"), &kim).await;
    assert_eq!((s, &shown["keypair"]["user_id"]), (200, &json!(kim_id)));
    let (_, l) = a.get(keys, &kai).await;
    assert!(names(&l).is_empty(), "{l}");
    a.statuses(
        &kai,
        &[
            ("GET", &format!("{keys}/kims"), 404),
            ("DELETE", &format!("{keys}/kims"), 404),
        ],
    )
    .await;
    a.sent(
        "POST",
        keys,
        &kai,
        json!({"keypair": {"name": "kims"}}),
        409,
    )
    .await;
    a.statuses(&kim, &[("DELETE", &format!("{keys}/kims"), 202)])
        .await;
}
