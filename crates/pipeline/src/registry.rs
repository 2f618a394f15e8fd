//! One declaration per action, from which everything else about the action is derived.

use std::fmt::Write as _;

/// Whether an action needs a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionUse {
    /// Refused with the service's missing-region error when absent.
    Required,
    /// Resolved when given (an unknown one is still refused); the handler decides otherwise.
    Optional,
    /// Required, but refused by the action itself, after the rate limit, authorization and
    /// the replay token (where the service checks it as a parameter: Alibaba's
    /// `MissingRegionId`). The gate treats it as [`RegionUse::Optional`]; the catalogue
    /// shows it as required.
    RequiredByAction,
}

/// What a service declares about one action. `H` is the service's handler type (usually a
/// function pointer).
#[derive(Debug)]
pub struct ActionSpec<H> {
    /// The action's name on the wire (`RunInstances`, `server.action.reboot`).
    pub name: &'static str,
    /// Requests per second per account (the cloud's documented quota); 0 = no limit.
    pub rate_limit: u32,
    /// Whether the action changes anything (audit, read-only policies).
    pub mutates: bool,
    /// Whether the action takes `DryRun`.
    pub dry_run: bool,
    /// The policy action it needs, in the cloud's grammar (`cvm:RunInstances`,
    /// `ecs:RebootInstance`, `os_compute_api:servers:reboot`).
    pub policy: &'static str,
    /// Whether the action checks each instance it touches against the principal's
    /// resource guard, so that policies naming particular instances can decide it
    /// ([`crate::Authorizer::authorize_scoped`]). False: only service-wide statements apply.
    pub per_resource: bool,
    /// The name of its parameter type (documentation; the handler parses into it).
    pub params: &'static str,
    pub region: RegionUse,
    pub handler: H,
}

/// The names of `specs` in declaration order, as a constant array (`N` is `specs.len()`):
/// a dialect's `ACTIONS`.
pub const fn spec_names<H, const N: usize>(specs: &[ActionSpec<H>]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = specs[i].name;
        i += 1;
    }
    out
}

/// A service's own catalogue column: its heading and how a row's cell is written.
pub type Column<H> = (&'static str, fn(&ActionSpec<H>) -> String);

/// Every action of one API service.
#[derive(Debug)]
pub struct Registry<H: 'static> {
    /// The cloud (`tencent`, `aliyun`, `openstack`): the metrics `dialect` label.
    pub cloud: &'static str,
    /// The service (`cvm`, `ecs`, `compute`).
    pub service: &'static str,
    /// The API version the service serves (`2017-03-12`), empty where the path says it.
    pub version: &'static str,
    pub actions: &'static [ActionSpec<H>],
}

/// The API services one cloud serves behind one signature scheme and envelope (Tencent CVM,
/// CAM, STS, …), told apart by the version a request names (the operator contract: "within a
/// cloud the version names the service"). The listener claims a request for the cloud by
/// these versions; the pipeline picks the registry by them.
#[derive(Debug)]
pub struct Services<H: 'static> {
    /// The cloud, as in each registry.
    pub cloud: &'static str,
    pub registries: &'static [&'static Registry<H>],
}

impl<H> Services<H> {
    /// The service that serves `version`.
    pub fn by_version(&self, version: &str) -> Option<&'static Registry<H>> {
        self.registries
            .iter()
            .copied()
            .find(|r| r.version == version)
    }

    /// Whether some service of the cloud serves `version`.
    pub fn serves(&self, version: &str) -> bool {
        self.by_version(version).is_some()
    }

    /// The versions served, one per service.
    pub fn versions(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.registries.iter().map(|r| r.version)
    }

    /// `action` as a metrics label: a name declared by the service of `version` when the
    /// version is known, else by any service of the cloud (a request refused before its
    /// version was read).
    pub fn label(&self, version: Option<&str>, action: &str) -> Option<&'static str> {
        match version.and_then(|v| self.by_version(v)) {
            Some(r) => r.label(action),
            None => self.registries.iter().find_map(|r| r.label(action)),
        }
    }
}

impl<H> Registry<H> {
    /// The registry of `cloud`'s `service`, serving `version` with `actions`.
    pub const fn new(
        cloud: &'static str,
        service: &'static str,
        version: &'static str,
        actions: &'static [ActionSpec<H>],
    ) -> Self {
        Self {
            cloud,
            service,
            version,
            actions,
        }
    }

    /// The action declared under `name` (exact, case-sensitive: the clouds are).
    pub fn get(&self, name: &str) -> Option<&'static ActionSpec<H>> {
        self.actions.iter().find(|a| a.name == name)
    }

    /// The declared names, in declaration order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.actions.iter().map(|a| a.name)
    }

    /// `name` as a metrics label value: only declared names are labels (a request's action is
    /// read before authentication; anything else would let a client mint label values).
    pub fn label(&self, name: &str) -> Option<&'static str> {
        self.get(name).map(|a| a.name)
    }

    /// The committed catalogue (docs/catalogue/<cloud>-<service>.md): one row per action.
    pub fn catalogue(&self) -> String {
        self.catalogue_with(&[])
    }

    /// [`Registry::catalogue`] with the service's own columns after the action's name (the
    /// method and path of a REST service, say).
    pub fn catalogue_with(&self, columns: &[Column<H>]) -> String {
        let mut out = String::new();
        let version = if self.version.is_empty() {
            String::new()
        } else {
            format!(" {}", self.version)
        };
        let _ = writeln!(
            out,
            "# {} {}{version} — action catalogue",
            self.cloud, self.service
        );
        out.push_str(
            "\nGenerated from the service's action registry; a test fails when the code and this\n\
             file drift (regenerate: `NUBIS_UPDATE_CATALOGUE=1 cargo test --release -p <crate> catalogue`).\n\n",
        );
        let heads: String = columns.iter().map(|(h, _)| format!(" {h} |")).collect();
        let rules: String = columns.iter().map(|_| "---|").collect();
        let _ = writeln!(
            out,
            "| action |{heads} parameters | rate limit (/s per account) | mutates | DryRun | region | policy action |"
        );
        let _ = writeln!(out, "|---|{rules}---|---:|---|---|---|---|");
        for a in self.actions {
            let limit = if a.rate_limit == 0 {
                "—".to_string()
            } else {
                a.rate_limit.to_string()
            };
            let yes = |b: bool| if b { "yes" } else { "no" };
            let region = match a.region {
                RegionUse::Required | RegionUse::RequiredByAction => "required",
                RegionUse::Optional => "optional",
            };
            let cells: String = columns
                .iter()
                .map(|(_, f)| format!(" {} |", f(a)))
                .collect();
            let _ = writeln!(
                out,
                "| {} |{cells} {} | {limit} | {} | {} | {region} | {} |",
                a.name,
                a.params,
                yes(a.mutates),
                yes(a.dry_run),
                a.policy
            );
        }
        out
    }

    /// The drift test: the committed catalogue at `path` equals [`Registry::catalogue`]. With
    /// `NUBIS_UPDATE_CATALOGUE=1` it writes the file instead. Returns the difference as an
    /// error message.
    pub fn check_catalogue(&self, path: &std::path::Path) -> Result<(), String> {
        self.check_catalogue_with(path, &[])
    }

    /// [`Registry::check_catalogue`] of [`Registry::catalogue_with`] `columns`.
    pub fn check_catalogue_with(
        &self,
        path: &std::path::Path,
        columns: &[Column<H>],
    ) -> Result<(), String> {
        let want = self.catalogue_with(columns);
        if std::env::var_os("NUBIS_UPDATE_CATALOGUE").is_some() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
            }
            return std::fs::write(path, want).map_err(|e| e.to_string());
        }
        let have = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "{}: {e} (regenerate it, see the file's header)",
                path.display()
            )
        })?;
        if have == want {
            return Ok(());
        }
        let first = have
            .lines()
            .zip(want.lines())
            .position(|(h, w)| h != w)
            .unwrap_or(have.lines().count().min(want.lines().count()));
        Err(format!(
            "{} drifted from the registry at line {}: committed {:?}, code {:?} \
             (regenerate: NUBIS_UPDATE_CATALOGUE=1)",
            path.display(),
            first + 1,
            have.lines().nth(first).unwrap_or("<end>"),
            want.lines().nth(first).unwrap_or("<end>"),
        ))
    }

    /// Declaration errors: a name declared twice, an empty name or policy. Each service's
    /// tests call this.
    pub fn validate(&self) -> Result<(), String> {
        for (i, a) in self.actions.iter().enumerate() {
            if a.name.is_empty() || a.policy.is_empty() {
                return Err(format!("action #{i} has an empty name or policy"));
            }
            if self.actions[..i].iter().any(|b| b.name == a.name) {
                return Err(format!("{} is declared twice", a.name));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn spec(name: &'static str, rate_limit: u32) -> ActionSpec<u8> {
        ActionSpec {
            name,
            rate_limit,
            mutates: true,
            dry_run: false,
            policy: "x:Y",
            per_resource: false,
            params: "P",
            region: RegionUse::Required,
            handler: 0,
        }
    }

    static REG: Registry<u8> = Registry {
        cloud: "test",
        service: "svc",
        version: "2000-01-01",
        actions: &[spec("A", 10), spec("B", 0)],
    };

    #[test]
    fn lookup_and_labels_are_exact() {
        assert_eq!(REG.get("A").map(|a| a.rate_limit), Some(10));
        assert!(REG.get("a").is_none());
        assert_eq!(REG.label("B"), Some("B"));
        assert_eq!(REG.label("B\n"), None);
        assert_eq!(REG.names().collect::<Vec<_>>(), ["A", "B"]);
        assert!(REG.validate().is_ok());
        static TWICE: Registry<u8> = Registry {
            cloud: "t",
            service: "s",
            version: "",
            actions: &[spec("A", 1), spec("A", 2)],
        };
        assert!(TWICE.validate().is_err());
    }

    #[test]
    fn catalogue_drift_is_reported() {
        let dir = std::env::temp_dir().join(format!("nubis-catalogue-{}", std::process::id()));
        let path = dir.join("c.md");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, REG.catalogue()).unwrap();
        if std::env::var_os("NUBIS_UPDATE_CATALOGUE").is_none() {
            assert!(REG.check_catalogue(&path).is_ok());
            std::fs::write(
                &path,
                REG.catalogue().replace("| A | P | 10 |", "| A | P | 20 |"),
            )
            .unwrap();
            let e = REG.check_catalogue(&path).unwrap_err();
            assert!(e.contains("line 8"), "{e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn service_columns_follow_the_name() {
        let cols: &[Column<u8>] = &[("handler", |a| a.handler.to_string())];
        let c = REG.catalogue_with(cols);
        assert!(c.contains("| action | handler | parameters |"), "{c}");
        assert!(c.contains("|---|---|---|---:|"), "{c}");
        assert!(c.contains("| A | 0 | P | 10 |"), "{c}");
        assert_eq!(REG.catalogue(), REG.catalogue_with(&[]));
    }
}
