//! Every change the console makes is a request to one of the APIs, run in process through
//! that API's pipeline exactly as an SDK's request would be: a Keystone session calls Nova
//! with its token, an access key session calls Tencent CVM signed (TC3) with its key. So the
//! console has no authorization, rate limit, rule or audit path of its own: the API's
//! registry, gate, policies, engine and trail decide, and a refusal carries that cloud's code
//! and message.

use crate::console::session::{Kind, Session};
use crate::http::AppState;
use nubis_core::{Instance, catalog};
use nubis_engine::IdKind;
use serde_json::{Value, json};
use std::net::IpAddr;
use std::time::Instant;

/// The Host the console's in-process Tencent requests name (and sign).
const HOST: &str = "console.nubis.internal";
/// The User-Agent of the console's requests, in the audit trail.
pub const USER_AGENT: &str = "nubis-console/1";

/// What an API answered.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub request_id: String,
    /// The cloud's error code and message (Nova's: the HTTP status and the fault's name).
    pub error: Option<(String, String)>,
    /// The reply's payload (Tencent: inside `Response`).
    pub body: Value,
}

impl Outcome {
    fn failed(code: &str, message: &str) -> Self {
        Self {
            request_id: String::new(),
            error: Some((code.to_string(), message.to_string())),
            body: Value::Null,
        }
    }
}

/// A change to one instance, with the options the clouds offer for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    Start,
    /// Tencent StopType: SOFT, HARD or SOFT_FIRST (Nova stops one way).
    Stop(String),
    /// SOFT or HARD.
    Reboot(String),
    EnterRescue {
        password: String,
        force_stop: bool,
    },
    ExitRescue,
    ResetPassword {
        password: String,
        force_stop: bool,
    },
    /// Tencent AssociateInstancesKeyPairs (Nova has no such call).
    Associate {
        key_id: String,
        force_stop: bool,
    },
    Disassociate {
        key_id: String,
        force_stop: bool,
    },
    Terminate,
}

impl Act {
    /// Whether a session of `kind` can ask for it (Nova has no key pair association).
    pub fn offered(name: &str, kind: &Kind) -> bool {
        !(matches!(kind, Kind::Keystone) && matches!(name, "associate" | "disassociate"))
    }
}

/// What a new instance is made of (the create form).
#[derive(Debug, Clone)]
pub struct NewInstance {
    pub name: String,
    pub image: &'static catalog::Image,
    pub instance_type: String,
    pub zone: &'static catalog::Zone,
    pub password: String,
    pub key: Option<KeyRef>,
}

/// A key pair as each API names it.
#[derive(Debug, Clone)]
pub struct KeyRef {
    pub id: String,
    pub name: String,
}

/// Runs `act` on `inst` through the session's API.
pub async fn act(
    s: &AppState,
    who: &Session,
    peer: Option<IpAddr>,
    inst: &Instance,
    act: &Act,
) -> Outcome {
    match who.kind {
        Kind::AccessKey => {
            let ids = json!([inst.tencent_id]);
            let (action, params) = match act {
                Act::Start => ("StartInstances", json!({"InstanceIds": ids})),
                Act::Stop(t) => ("StopInstances", json!({"InstanceIds": ids, "StopType": t})),
                Act::Reboot(t) => (
                    "RebootInstances",
                    json!({"InstanceIds": ids, "StopType": t}),
                ),
                Act::EnterRescue {
                    password,
                    force_stop,
                } => (
                    "EnterRescueMode",
                    json!({"InstanceId": inst.tencent_id, "Password": password, "ForceStop": force_stop}),
                ),
                Act::ExitRescue => ("ExitRescueMode", json!({"InstanceId": inst.tencent_id})),
                Act::ResetPassword {
                    password,
                    force_stop,
                } => (
                    "ResetInstancesPassword",
                    json!({"InstanceIds": ids, "Password": password, "ForceStop": force_stop}),
                ),
                Act::Associate { key_id, force_stop } => (
                    "AssociateInstancesKeyPairs",
                    json!({"InstanceIds": ids, "KeyIds": [key_id], "ForceStop": force_stop}),
                ),
                Act::Disassociate { key_id, force_stop } => (
                    "DisassociateInstancesKeyPairs",
                    json!({"InstanceIds": ids, "KeyIds": [key_id], "ForceStop": force_stop}),
                ),
                Act::Terminate => ("TerminateInstances", json!({"InstanceIds": ids})),
            };
            tencent(s, &who.cred, peer, action, region_of(inst), params).await
        }
        Kind::Keystone => {
            let path = format!("/compute/v2.1/servers/{}", inst.uuid);
            let action = |body: Value| ("POST", format!("{path}/action"), Some(body));
            let (method, path, body) = match act {
                Act::Start => action(json!({"os-start": null})),
                Act::Stop(_) => action(json!({"os-stop": null})),
                Act::Reboot(t) => action(json!({"reboot": {"type": t}})),
                Act::EnterRescue { password, .. } => {
                    action(json!({"rescue": {"adminPass": password}}))
                }
                Act::ExitRescue => action(json!({"unrescue": null})),
                Act::ResetPassword { password, .. } => {
                    action(json!({"changePassword": {"adminPass": password}}))
                }
                Act::Associate { .. } | Act::Disassociate { .. } => {
                    return Outcome::failed(
                        "400 badRequest",
                        "Nova has no call to associate key pairs with a server.",
                    );
                }
                Act::Terminate => ("DELETE", path, None),
            };
            nova(s, &who.cred, peer, method, &path, body).await
        }
    }
}

/// Creates an instance through the session's API; its ID in that API on success.
pub async fn create(
    s: &AppState,
    who: &Session,
    peer: Option<IpAddr>,
    new: &NewInstance,
) -> (Outcome, Option<(IdKind, String)>) {
    match who.kind {
        Kind::AccessKey => {
            let mut params = json!({
                "ImageId": new.image.id,
                "InstanceType": new.instance_type,
                "Placement": {"Zone": new.zone.tencent},
                "InstanceName": new.name,
                "LoginSettings": {"Password": new.password},
            });
            if let Some(k) = &new.key {
                params["LoginSettings"] = json!({"KeyIds": [k.id]});
            }
            let out = tencent(
                s,
                &who.cred,
                peer,
                "RunInstances",
                Some("ap-guangzhou"),
                params,
            )
            .await;
            let id = out.body["InstanceIdSet"][0]
                .as_str()
                .map(|t| (IdKind::Tencent, t.to_string()));
            (out, id)
        }
        Kind::Keystone => {
            let mut server = json!({
                "name": new.name,
                "imageRef": s.engine.image_uuid(new.image.id).to_string(),
                "flavorRef": new.instance_type,
                "availability_zone": new.zone.openstack,
                "adminPass": new.password,
            });
            if let Some(k) = &new.key {
                server["key_name"] = json!(k.name);
            }
            let out = nova(
                s,
                &who.cred,
                peer,
                "POST",
                "/compute/v2.1/servers",
                Some(json!({ "server": server })),
            )
            .await;
            let id = out.body["server"]["id"]
                .as_str()
                .map(|u| (IdKind::Uuid, u.to_string()));
            (out, id)
        }
    }
}

/// Creates (no public key) or imports a key pair; the private key, when one was made.
pub async fn create_key(
    s: &AppState,
    who: &Session,
    peer: Option<IpAddr>,
    name: &str,
    public_key: Option<&str>,
) -> (Outcome, Option<String>) {
    match who.kind {
        Kind::AccessKey => {
            let out = match public_key {
                Some(pk) => {
                    let p = json!({"KeyName": name, "ProjectId": 0, "PublicKey": pk});
                    tencent(s, &who.cred, peer, "ImportKeyPair", Some("ap-guangzhou"), p).await
                }
                None => {
                    let p = json!({"KeyName": name, "ProjectId": 0});
                    tencent(s, &who.cred, peer, "CreateKeyPair", Some("ap-guangzhou"), p).await
                }
            };
            let private = out.body["KeyPair"]["PrivateKey"]
                .as_str()
                .map(str::to_string);
            (out, private)
        }
        Kind::Keystone => {
            let mut kp = json!({ "name": name });
            if let Some(pk) = public_key {
                kp["public_key"] = json!(pk);
            }
            let out = nova(
                s,
                &who.cred,
                peer,
                "POST",
                "/compute/v2.1/os-keypairs",
                Some(json!({ "keypair": kp })),
            )
            .await;
            let private = out.body["keypair"]["private_key"]
                .as_str()
                .map(str::to_string);
            (out, private)
        }
    }
}

pub async fn delete_key(
    s: &AppState,
    who: &Session,
    peer: Option<IpAddr>,
    key: &KeyRef,
) -> Outcome {
    match who.kind {
        Kind::AccessKey => {
            let p = json!({"KeyIds": [key.id]});
            tencent(
                s,
                &who.cred,
                peer,
                "DeleteKeyPairs",
                Some("ap-guangzhou"),
                p,
            )
            .await
        }
        Kind::Keystone => {
            let path = format!(
                "/compute/v2.1/os-keypairs/{}",
                form_urlencoded::byte_serialize(key.name.as_bytes()).collect::<String>()
            );
            nova(s, &who.cred, peer, "DELETE", &path, None).await
        }
    }
}

/// Revokes a Keystone session's token (sign-out).
pub async fn revoke(s: &AppState, who: &Session, peer: Option<IpAddr>) {
    if who.kind == Kind::Keystone {
        let headers = vec![
            ("x-auth-token".to_string(), who.cred.clone()),
            ("x-subject-token".to_string(), who.cred.clone()),
            ("user-agent".to_string(), USER_AGENT.to_string()),
        ];
        let _ = send_openstack(s, peer, "DELETE", "/identity/v3/auth/tokens", &headers, &[]).await;
    }
}

/// A Keystone password sign-in: the token and its expiry (s since the epoch), or the
/// refusal. The token is issued by Keystone's own route (its lockout, rules and trail).
pub async fn keystone_login(
    s: &AppState,
    peer: Option<IpAddr>,
    user: &str,
    password: &str,
    project: &str,
    domain: &str,
) -> Result<String, Outcome> {
    let body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": domain}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"name": domain}}}
    }});
    let headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("user-agent".to_string(), USER_AGENT.to_string()),
    ];
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let (out, reply_headers) = send_openstack(
        s,
        peer,
        "POST",
        "/identity/v3/auth/tokens",
        &headers,
        &bytes,
    )
    .await;
    if out.error.is_some() {
        return Err(out);
    }
    reply_headers
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-subject-token"))
        .map(|(_, v)| v)
        .ok_or_else(|| Outcome::failed("500", "Keystone issued no token"))
}

fn region_of(inst: &Instance) -> Option<&'static str> {
    catalog::region(&inst.region).map(|r| r.tencent)
}

/// One Tencent CVM request signed with the session's key, through the CVM pipeline.
async fn tencent(
    s: &AppState,
    key_id: &str,
    peer: Option<IpAddr>,
    action: &str,
    region: Option<&str>,
    params: Value,
) -> Outcome {
    let start = Instant::now();
    let Some((_, secret)) = s.engine.access_key(key_id) else {
        return Outcome::failed(
            "AuthFailure.SecretIdNotFound",
            "The SecretId of this session no longer exists or is disabled.",
        );
    };
    let body = serde_json::to_vec(&params).unwrap_or_default();
    let now = crate::http::now();
    let auth = nubis_auth::tencent::sign_tc3(
        "POST",
        HOST,
        "",
        "application/json",
        &body,
        key_id,
        &secret,
        now,
        "cvm",
    );
    let mut headers: Vec<(String, String)> = [
        ("authorization", auth),
        ("content-type", "application/json".into()),
        ("host", HOST.into()),
        ("x-tc-action", action.into()),
        ("x-tc-version", "2017-03-12".into()),
        ("x-tc-timestamp", now.to_string()),
        ("user-agent", USER_AGENT.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(r) = region {
        headers.push(("x-tc-region".into(), r.into()));
    }
    let reply = s
        .tencent
        .handle(nubis_api_tencent::RawRequest {
            http: nubis_auth::HttpRequestParts {
                method: "POST",
                host: HOST,
                path: "/",
                raw_query: "",
                headers: &headers,
                body: &body,
                peer,
            },
            now,
        })
        .await;
    crate::http::observe_reply(&reply, start);
    let v: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    let r = &v["Response"];
    let error = r["Error"]["Code"].as_str().map(|c| {
        (
            c.to_string(),
            r["Error"]["Message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    });
    Outcome {
        request_id: reply.request_id,
        error,
        body: r.clone(),
    }
}

/// One Nova request with the session's token, through the OpenStack pipeline.
async fn nova(
    s: &AppState,
    token: &str,
    peer: Option<IpAddr>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Outcome {
    let headers = vec![
        ("x-auth-token".to_string(), token.to_string()),
        ("content-type".to_string(), "application/json".to_string()),
        ("user-agent".to_string(), USER_AGENT.to_string()),
    ];
    let bytes = body
        .map(|b| serde_json::to_vec(&b).unwrap_or_default())
        .unwrap_or_default();
    send_openstack(s, peer, method, path, &headers, &bytes)
        .await
        .0
}

async fn send_openstack(
    s: &AppState,
    peer: Option<IpAddr>,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (Outcome, Vec<(String, String)>) {
    let start = Instant::now();
    let reply = s
        .openstack
        .handle(nubis_api_openstack::RawRequest {
            http: nubis_auth::HttpRequestParts {
                method,
                host: HOST,
                path,
                raw_query: "",
                headers,
                body,
                peer,
            },
        })
        .await;
    crate::http::observe_openstack(&reply, start);
    let v: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    let error = (reply.status >= 400).then(|| {
        // Nova's fault: `{"conflictingRequest": {"code": 409, "message": "…"}}`; Keystone's:
        // `{"error": {"code": 401, "title": "Unauthorized", "message": "…"}}`.
        let (fault, inner) = v
            .as_object()
            .and_then(|o| o.iter().next())
            .map(|(k, v)| (k.clone(), v.clone()))
            .unwrap_or_default();
        let message = inner["message"].as_str().unwrap_or_default().to_string();
        (format!("{} {fault}", reply.status), message)
    });
    (
        Outcome {
            request_id: reply.request_id,
            error,
            body: v,
        },
        reply.headers,
    )
}
