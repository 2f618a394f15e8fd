//! Application credential access rules (Keystone's `access_rule`, docs/keystone-v3.md): what a
//! token issued for an application credential may call — a service type, an HTTP method and
//! a path template. A rule belongs to a user and is shared by the user's credentials that name
//! it (by ID, or by the same service, method and path); it outlives them and is deleted on its
//! own once none uses it. Stored like the rest of the directory (`keystone_objects`, kind
//! `access_rule`); the unique name key `<user>/<service> <method> <path>` keeps one rule per
//! triple even with several API nodes.

use super::{KsDir, KsError, Object, del, new_id};
use crate::Engine;
use nubis_store::Write;
use serde::{Deserialize, Serialize};

/// Access rules per user (nubis).
pub const MAX_ACCESS_RULES_PER_USER: usize = 200;
/// Access rules one application credential names (nubis).
pub const MAX_RULES_PER_APP_CRED: usize = 64;
/// Keystone's schema: a path is at most 225 characters and starts with `/`.
pub const MAX_RULE_PATH: usize = 225;
/// The methods a rule may name (Keystone's schema).
pub const METHODS: &[&str] = &["HEAD", "GET", "POST", "PUT", "PATCH", "DELETE"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRule {
    pub id: String,
    pub user_id: String,
    pub service: String,
    pub method: String,
    pub path: String,
}

impl AccessRule {
    /// Does the rule allow `method` on `path` of service type `service`? keystonemiddleware's
    /// `validate_allowed_request`: the method and service exactly, the path by the template.
    pub fn allows(&self, service: &str, method: &str, path: &str) -> bool {
        self.method == method && self.service == service && path_matches(&self.path, path)
    }
}

/// keystonemiddleware's `_path_matches`: in the template `*` and `{name}` stand for one or
/// more characters other than `/`, `**` for any characters, everything else for itself; the
/// whole path must match. Linear in the template's tokens times the path (both bounded).
pub fn path_matches(template: &str, path: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Tok {
        Lit(u8),
        Segment,
        Any,
    }
    let t = template.as_bytes();
    let mut toks = Vec::with_capacity(t.len());
    let mut i = 0;
    while let Some(&c) = t.get(i) {
        match c {
            b'*' if t.get(i + 1) == Some(&b'*') => {
                toks.push(Tok::Any);
                i += 2;
            }
            b'*' => {
                toks.push(Tok::Segment);
                i += 1;
            }
            b'{' => match t.get(i..).and_then(|r| r.iter().position(|&b| b == b'}')) {
                Some(end) => {
                    toks.push(Tok::Segment);
                    i += end + 1;
                }
                // An unclosed `{` is never a literal in the middleware's grammar: no match.
                None => return false,
            },
            b'}' => return false,
            c => {
                toks.push(Tok::Lit(c));
                i += 1;
            }
        }
    }
    // reach[j]: the first j bytes of the path are matched by the tokens so far.
    let p = path.as_bytes();
    let mut reach = vec![false; p.len() + 1];
    reach[0] = true;
    for tok in toks {
        let mut next = vec![false; p.len() + 1];
        match tok {
            Tok::Lit(c) => {
                for j in 0..p.len() {
                    next[j + 1] = reach[j] && p[j] == c;
                }
            }
            Tok::Any => {
                let mut on = false;
                for j in 0..=p.len() {
                    on |= reach[j];
                    next[j] = on;
                }
            }
            Tok::Segment => {
                // One or more non-`/` bytes after a reached position.
                let mut on = false;
                for j in 0..p.len() {
                    on = (on || reach[j]) && p[j] != b'/';
                    next[j + 1] = on;
                }
            }
        }
        if !next.iter().any(|&r| r) {
            return false;
        }
        reach = next;
    }
    reach[p.len()]
}

super::id_named!(
    AccessRule,
    access_rules,
    "access_rule",
    "access rule",
    "access rules",
    |r| format!("{}/{} {} {}", r.user_id, r.service, r.method, r.path)
);

/// A rule a new application credential names: an existing one of its user by ID, or a
/// service, method and path (reusing the user's rule of that triple, else a new one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleRef {
    Id(String),
    New {
        service: String,
        method: String,
        path: String,
    },
}

impl KsDir {
    /// The access rules `pick` selects: their IDs and the writes deleting them.
    pub(super) fn access_rules_where(
        &self,
        pick: impl Fn(&AccessRule) -> bool,
    ) -> (Vec<String>, Vec<Write>) {
        let ids: Vec<String> = (self.access_rules.values())
            .filter(|r| pick(r))
            .map(|r| r.id.clone())
            .collect();
        let writes = ids.iter().map(|i| del(AccessRule::KIND, i)).collect();
        (ids, writes)
    }

    /// Resolve `refs` for `user`: the rules (existing or new, in order, each once) and the new
    /// ones to store. Checked: the schema's shapes, that an ID names one of the user's rules,
    /// the bounds.
    pub(super) fn resolve_rules(
        &self,
        user: &str,
        refs: &[RuleRef],
    ) -> Result<(Vec<AccessRule>, Vec<AccessRule>), KsError> {
        if refs.len() > MAX_RULES_PER_APP_CRED {
            return Err(KsError::Invalid(format!(
                "Invalid input for field 'access_rules': at most {MAX_RULES_PER_APP_CRED} rules."
            )));
        }
        let mine: Vec<&AccessRule> = (self.access_rules.values())
            .filter(|r| r.user_id == user)
            .collect();
        let mut rules: Vec<AccessRule> = Vec::new();
        let mut fresh: Vec<AccessRule> = Vec::new();
        for r in refs {
            let rule = match r {
                RuleRef::Id(id) => mine
                    .iter()
                    .find(|x| x.id == *id)
                    .map(|x| (*x).clone())
                    .ok_or_else(|| KsError::NotFound("access rule", id.clone()))?,
                RuleRef::New {
                    service,
                    method,
                    path,
                } => {
                    check_rule(service, method, path)?;
                    let same = |x: &AccessRule| {
                        x.service == *service && x.method == *method && x.path == *path
                    };
                    match mine.iter().find(|x| same(x)) {
                        Some(x) => (*x).clone(),
                        None => match fresh.iter().find(|x| same(x)) {
                            Some(x) => x.clone(),
                            None => {
                                let new = AccessRule {
                                    id: new_id(),
                                    user_id: user.into(),
                                    service: service.clone(),
                                    method: method.clone(),
                                    path: path.clone(),
                                };
                                fresh.push(new.clone());
                                new
                            }
                        },
                    }
                }
            };
            if !rules.iter().any(|x| x.id == rule.id) {
                rules.push(rule);
            }
        }
        if mine.len() + fresh.len() > MAX_ACCESS_RULES_PER_USER {
            return Err(KsError::Forbidden(format!(
                "A user holds at most {MAX_ACCESS_RULES_PER_USER} access rules."
            )));
        }
        Ok((rules, fresh))
    }
}

/// Keystone's schema for a rule given by value.
fn check_rule(service: &str, method: &str, path: &str) -> Result<(), KsError> {
    let bad = |field: &str, why: &str| {
        KsError::Invalid(format!(
            "Invalid input for field 'access_rules': {field} {why}."
        ))
    };
    if service.is_empty()
        || service.len() > 64
        || !service
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(bad(
            "service",
            "must be 1 to 64 letters, digits, '-' or '_'",
        ));
    }
    if !METHODS.contains(&method) {
        return Err(bad(
            "method",
            "must be one of HEAD, GET, POST, PUT, PATCH, DELETE",
        ));
    }
    if !path.starts_with('/') || path.len() > MAX_RULE_PATH || path.chars().any(char::is_control) {
        return Err(bad(
            "path",
            "must start with '/' and be at most 225 characters",
        ));
    }
    Ok(())
}

impl Engine {
    /// The access rules of `user`.
    pub fn ks_access_rules(&self, user: &str) -> Vec<AccessRule> {
        (self.ks().access_rules.values())
            .filter(|r| r.user_id == user)
            .cloned()
            .collect()
    }

    /// Access rule `id` of `user`.
    pub fn ks_access_rule(&self, user: &str, id: &str) -> Result<AccessRule, KsError> {
        self.ks()
            .access_rules
            .get(id)
            .filter(|r| r.user_id == user)
            .cloned()
            .ok_or_else(|| KsError::NotFound("access rule", id.into()))
    }

    /// The rules a token issued for application credential `app_cred` is held to; empty:
    /// none (the credential was made without rules, or is gone — then the token is too).
    pub fn ks_app_cred_rules(&self, app_cred: &str) -> Vec<AccessRule> {
        let dir = self.ks();
        dir.app_creds.get(app_cred).map_or_else(Vec::new, |a| {
            (a.access_rules.iter())
                .filter_map(|id| dir.access_rules.get(id).cloned())
                .collect()
        })
    }

    /// Delete access rule `id` of `user`; one an application credential still names is
    /// refused (Keystone's 403).
    pub async fn ks_delete_access_rule(&self, user: &str, id: &str) -> Result<(), KsError> {
        let _serial = self.inner.credentials.lock().await;
        self.ks_access_rule(user, id)?;
        if (self.ks().app_creds.values()).any(|a| a.access_rules.iter().any(|r| r == id)) {
            return Err(KsError::Forbidden(format!(
                "Access rule {id} is in use by an application credential and cannot be deleted."
            )));
        }
        self.commit(vec![del(AccessRule::KIND, id)]).await?;
        self.inner.keystone.write().access_rules.remove(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::path_matches;

    #[test]
    fn templates_match_as_keystonemiddleware() {
        let yes = [
            ("/v2.1/servers/*/ips", "/v2.1/servers/abc/ips"),
            ("/v2.1/servers/{server_id}/ips", "/v2.1/servers/abc/ips"),
            ("/v2.1/servers/**", "/v2.1/servers/abc/ips/x"),
            ("/v2.1/servers/**", "/v2.1/servers/"),
            ("/v2.1/**", "/v2.1/"),
            ("/v2/images", "/v2/images"),
            ("**", ""),
            ("/a*b", "/axxb"),
        ];
        for (t, p) in yes {
            assert!(path_matches(t, p), "{t} ~ {p}");
        }
        let no = [
            ("/v2.1/servers/*/ips", "/v2.1/servers//ips"),
            ("/v2.1/servers/*/ips", "/v2.1/servers/a/b/ips"),
            ("/v2.1/servers/*", "/v2.1/servers/a/"),
            ("/v2.1/servers", "/v2.1/servers/"),
            ("/v2.1/servers", "/v2.1/server"),
            ("/v2.1/servers/{id", "/v2.1/servers/{id"),
            ("/a}b", "/a}b"),
            ("/a*b", "/ab"),
        ];
        for (t, p) in no {
            assert!(!path_matches(t, p), "{t} !~ {p}");
        }
    }

    #[test]
    fn a_long_path_against_many_wildcards_stays_cheap() {
        let template = "/**".repeat(70);
        let path = "/a".repeat(4000) + "x";
        assert!(path_matches(&template, &path));
        assert!(!path_matches(&(template + "y"), &path));
    }
}
