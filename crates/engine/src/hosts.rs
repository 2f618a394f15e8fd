//! Agent hosts (docs/agents.md): the operator registers a host and hands its credential to
//! `nubis agent`; the agent reports every few seconds; the engine places new instances on the
//! hosts of their zone (`nubis_core::hosts::place`) and drives their steps through the
//! [`Router`]. Every node reads the host table again each second, so all nodes agree on which
//! hosts are up within that second. A host whose reports stop is lost: its instances are shown
//! as unknown (per dialect) and their operations wait for it.

use crate::{Engine, Fleet, now_ms, store_err};
use nubis_auth::agent::{AgentAuthError, Signed};
use nubis_core::hosts::{
    Candidate, Capacity, GroupRule, HostHealth, HostRecord, Placement, place_with,
};
use nubis_core::{DomainError, Instance, catalog};
use nubis_driver::router::Router;
use nubis_driver::wire::{Guests, Report};
use nubis_store::{HostDirectory, HostReport, StoreError};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::time::Duration;

/// How often an agent reports (it is told so in each answer) and every node re-reads the
/// host table.
pub const REPORT_EVERY: Duration = Duration::from_secs(2);
/// How long a host may stay silent before it is lost: a few missed reports.
pub const DEFAULT_HOST_TIMEOUT: Duration = Duration::from_secs(10);

/// What this node knows of the hosts: the table as last read.
#[derive(Debug)]
pub(crate) struct HostCache {
    hosts: RwLock<Vec<HostRecord>>,
    /// Host ID → (sealed credential, opened): opened once per credential, not at every read
    /// of the table or every signed call.
    opened: parking_lot::Mutex<HashMap<String, (String, String)>>,
    timeout_ms: i64,
}

impl HostCache {
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            hosts: RwLock::default(),
            opened: Default::default(),
            timeout_ms: i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX),
        }
    }
}

/// A host as the admin API lists it (without its credential).
#[derive(Debug, Clone, serde::Serialize)]
pub struct HostView {
    pub id: String,
    pub zone: String,
    pub address: String,
    pub driver: String,
    pub health: HostHealth,
    pub capacity: Capacity,
    /// What its instances take.
    pub used: Capacity,
    pub instances: usize,
    pub last_seen_ms: i64,
    pub created_at_ms: i64,
}

/// Why an agent's call was refused.
#[derive(Debug, thiserror::Error)]
pub enum HostCallError {
    #[error(transparent)]
    Auth(#[from] AgentAuthError),
    #[error("unknown host")]
    UnknownHost,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Domain(#[from] DomainError),
}

/// A zone named by any dialect's name or the catalogue's ID.
fn zone_of(name: &str) -> Option<&'static catalog::Zone> {
    catalog::zone(name)
        .or_else(|| catalog::zone_by_tencent(name))
        .or_else(|| catalog::zone_by_aliyun(name))
        .or_else(|| catalog::ZONES.iter().find(|z| z.openstack == name))
}

fn directory(e: &Engine) -> Result<&dyn HostDirectory, DomainError> {
    e.inner
        .store
        .host_directory()
        .ok_or_else(|| DomainError::Unavailable("this store keeps no hosts".into()))
}

/// What each host's instances take, and how many they are: the fleet's and its pending
/// creates'.
type Usage = HashMap<String, (Capacity, usize)>;

fn count_use(used: &mut Usage, inst: &Instance) {
    if let Some(h) = inst.host.as_deref()
        && inst.state.is_listed()
    {
        let e = used.entry(h.to_string()).or_default();
        e.0.add(&Capacity::of(inst));
        e.1 += 1;
    }
}

fn used_by_host(fleet: &Fleet) -> Usage {
    let mut used = Usage::new();
    // Only instances on a host count: only those are built from their records.
    let table = fleet.instances.read();
    let hosted = (table.rows())
        .filter(|r| r.host().is_some())
        .map(|r| r.instance());
    for inst in hosted {
        count_use(&mut used, &inst);
    }
    for inst in &fleet.pending_creates {
        count_use(&mut used, inst);
    }
    used
}

/// The placements of one create, under the fleet's lock: the hosts as this node last read
/// them and what their instances take, read once (a scan of the fleet, only if a host serves
/// the zone) and counted on as the create's instances are placed.
pub(crate) struct Placer<'a> {
    fleet: &'a Fleet,
    hosts: parking_lot::RwLockReadGuard<'a, Vec<HostRecord>>,
    used: Option<Usage>,
    now: i64,
    timeout_ms: i64,
}

impl Placer<'_> {
    /// Where `inst` goes (`nubis_core::hosts::place`); its host, if any, is `inst.host` for
    /// the next call once the caller sets it.
    pub(crate) fn place(&mut self, inst: &Instance, group: Option<&GroupRule<'_>>) -> Placement {
        self.place_need(&inst.zone, &Capacity::of(inst), group)
    }

    /// Where a new instance in `zone` needing `need` (in `group`, if any) would go.
    fn place_need(
        &mut self,
        zone: &str,
        need: &Capacity,
        group: Option<&GroupRule<'_>>,
    ) -> Placement {
        if !self.hosts.iter().any(|h| h.zone == zone) {
            return place_with(&[], zone, need, group);
        }
        let fleet = self.fleet;
        let used = self.used.get_or_insert_with(|| used_by_host(fleet));
        let candidates: Vec<Candidate<'_>> = self
            .hosts
            .iter()
            .map(|h| Candidate {
                host: h,
                health: h.health(self.now, self.timeout_ms),
                used: used.get(h.id.as_str()).map(|u| u.0).unwrap_or_default(),
            })
            .collect();
        place_with(&candidates, zone, need, group)
    }

    /// Count `inst` (placed) on its host for the instances placed after it.
    pub(crate) fn placed(&mut self, inst: &Instance) {
        if let Some(used) = &mut self.used {
            count_use(used, inst);
        }
    }
}

impl Engine {
    pub(crate) fn router(&self) -> &Router {
        &self.inner.router
    }

    /// Read the host table again and point the router at every host that has reported (each
    /// node does so every second; tests and the admin API do it at once).
    pub async fn refresh_hosts(&self) -> Result<(), DomainError> {
        let Ok(dir) = directory(self) else {
            return Ok(());
        };
        let hosts = dir.hosts().await.map_err(store_err)?;
        self.inner
            .hosts
            .opened
            .lock()
            .retain(|id, _| hosts.iter().any(|h| &h.id == id));
        for h in &hosts {
            if h.address.is_empty() {
                continue;
            }
            match self.host_secret(h) {
                Ok(secret) => self.router().set_host(&h.id, &h.address, &secret),
                Err(e) => {
                    tracing::warn!(host = %h.id, error = %e, "cannot open a host's credential")
                }
            }
        }
        let gone: Vec<String> = self
            .inner
            .hosts
            .hosts
            .read()
            .iter()
            .filter(|old| !hosts.iter().any(|h| h.id == old.id))
            .map(|h| h.id.clone())
            .collect();
        for id in gone {
            self.router().forget_host(&id);
        }
        *self.inner.hosts.hosts.write() = hosts;
        Ok(())
    }

    pub(crate) fn spawn_host_tick(&self) {
        if self.inner.store.host_directory().is_none() {
            return;
        }
        self.spawn_tick(Duration::from_secs(1), |e: Engine| async move {
            if let Err(err) = e.refresh_hosts().await {
                tracing::warn!(error = %err, "reading the host table failed");
            }
        });
    }

    /// Register a host serving `zone` (any dialect's name of it); returns it and its
    /// credential, which is shown only here.
    pub async fn create_host(
        &self,
        id: &str,
        zone: &str,
    ) -> Result<(HostView, String), DomainError> {
        if !nubis_core::hosts::valid_host_id(id) {
            return Err(DomainError::InvalidValue {
                name: "id".into(),
                reason: "1 to 63 of a-z, 0-9 and -, not starting with -".into(),
            });
        }
        let zone = zone_of(zone).ok_or_else(|| DomainError::InvalidZone(zone.to_string()))?;
        let secret = hex::encode(rand::random::<[u8; 32]>());
        let record = HostRecord {
            id: id.to_string(),
            zone: zone.id.to_string(),
            sealed_secret: self.inner.secrets.seal(&secret),
            created_at_ms: now_ms(),
            address: String::new(),
            driver: String::new(),
            capacity: Capacity::default(),
            last_seen_ms: 0,
        };
        self.check_store()?;
        directory(self)?
            .create_host(&record)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => DomainError::InvalidValue {
                    name: "id".into(),
                    reason: format!("host {id} already exists"),
                },
                e => store_err(e),
            })?;
        self.refresh_hosts().await?;
        let view = self
            .hosts()
            .into_iter()
            .find(|h| h.id == id)
            .ok_or_else(|| DomainError::Internal("the new host is not in the table".into()))?;
        Ok((view, secret))
    }

    /// Forget a host no instance is placed on.
    pub async fn delete_host(&self, id: &str) -> Result<(), DomainError> {
        let placed = self
            .inner
            .table
            .read()
            .rows()
            .filter(|r| r.host() == Some(id) && r.state().is_listed())
            .count();
        if placed > 0 {
            return Err(DomainError::InvalidParameter(format!(
                "host {id} still runs {placed} instance(s)"
            )));
        }
        self.check_store()?;
        if !directory(self)?.delete_host(id).await.map_err(store_err)? {
            return Err(DomainError::InvalidValue {
                name: "id".into(),
                reason: format!("no host {id}"),
            });
        }
        self.refresh_hosts().await
    }

    /// Every registered host as this node last read the table.
    pub fn hosts(&self) -> Vec<HostView> {
        let now = now_ms();
        let fleet = self.inner.fleet.lock();
        let used = used_by_host(&fleet);
        self.inner
            .hosts
            .hosts
            .read()
            .iter()
            .map(|h| {
                let (u, n) = used.get(h.id.as_str()).copied().unwrap_or_default();
                HostView {
                    id: h.id.clone(),
                    zone: h.zone.clone(),
                    address: h.address.clone(),
                    driver: h.driver.clone(),
                    health: h.health(now, self.inner.hosts.timeout_ms),
                    capacity: h.capacity,
                    used: u,
                    instances: n,
                    last_seen_ms: h.last_seen_ms,
                    created_at_ms: h.created_at_ms,
                }
            })
            .collect()
    }

    /// The health of the host `inst` runs on; `None` for the embedded driver's instances.
    pub fn host_health(&self, inst: &Instance) -> Option<HostHealth> {
        let id = inst.host.as_deref()?;
        let now = now_ms();
        let hosts = self.inner.hosts.hosts.read();
        Some(
            hosts
                .iter()
                .find(|h| h.id == id)
                .map_or(HostHealth::Lost, |h| {
                    h.health(now, self.inner.hosts.timeout_ms)
                }),
        )
    }

    /// For each (zone, need): would a new instance be placed now? A zone no agent host serves
    /// is the embedded driver's and always in stock; otherwise a host that answers must have
    /// room (the stock views: Tencent DescribeZoneInstanceConfigInfos, Alibaba
    /// DescribeAvailableResource). One scan of the fleet for all of them.
    pub fn in_stock(&self, asks: &[(&str, Capacity)]) -> Vec<bool> {
        let fleet = self.inner.fleet.lock();
        let mut placer = self.placer(&fleet);
        asks.iter()
            .map(|(zone, need)| placer.place_need(zone, need, None) != Placement::SoldOut)
            .collect()
    }

    /// The placements of one create over `fleet` (held locked by the caller).
    pub(crate) fn placer<'a>(&'a self, fleet: &'a Fleet) -> Placer<'a> {
        Placer {
            fleet,
            hosts: self.inner.hosts.hosts.read(),
            used: None,
            now: now_ms(),
            timeout_ms: self.inner.hosts.timeout_ms,
        }
    }

    /// The host a signed agent call comes from, checked: its record, its credential and the
    /// signature over `method`, `path` and `body`.
    async fn host_caller(
        &self,
        signed: &Signed<'_>,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<HostRecord, HostCallError> {
        let known = || {
            self.inner
                .hosts
                .hosts
                .read()
                .iter()
                .find(|h| h.id == signed.host)
                .cloned()
        };
        // The table as read within the last second: a host registered on another node a
        // moment ago is known at the next read (its agent retries). No read on demand: an
        // unsigned caller naming unknown hosts must not cost a query each.
        let record = known().ok_or(HostCallError::UnknownHost)?;
        let secret = self.host_secret(&record)?;
        signed.verify(&secret, method, path, body, now_ms())?;
        Ok(record)
    }

    /// A host's credential in clear, opened once per sealed value.
    fn host_secret(&self, h: &HostRecord) -> Result<String, DomainError> {
        let mut opened = self.inner.hosts.opened.lock();
        if let Some((sealed, secret)) = opened.get(&h.id)
            && *sealed == h.sealed_secret
        {
            return Ok(secret.clone());
        }
        let secret = self
            .inner
            .secrets
            .open(&h.sealed_secret)
            .map_err(|e| DomainError::Internal(format!("host credential: {e}")))?;
        opened.insert(h.id.clone(), (h.sealed_secret.clone(), secret.clone()));
        Ok(secret)
    }

    /// An agent's report: recorded (a replay, not newer than the last, is refused), and the
    /// host is reachable from this node at once.
    pub async fn host_report(
        &self,
        signed: &Signed<'_>,
        path: &str,
        body: &[u8],
    ) -> Result<Duration, HostCallError> {
        let record = self.host_caller(signed, "POST", path, body).await?;
        let report: Report =
            serde_json::from_slice(body).map_err(|e| HostCallError::Invalid(e.to_string()))?;
        if nubis_driver::remote::authority(&report.address).is_none()
            || report.address.len() > 200
            || report.driver.len() > 16
        {
            return Err(HostCallError::Invalid(
                "address must be http://host:port (at most 200 bytes), driver at most 16".into(),
            ));
        }
        self.check_store()?;
        let stored = directory(self)?
            .report_host(
                &record.id,
                &HostReport {
                    address: report.address,
                    driver: report.driver,
                    capacity: report.capacity,
                    seen_ms: now_ms(),
                    signed_ms: signed.date_ms,
                },
            )
            .await
            .map_err(store_err)?;
        if !stored {
            return Err(AgentAuthError::Replayed.into());
        }
        self.refresh_hosts().await?;
        Ok(REPORT_EVERY)
    }

    /// What a (re)starting agent restores: the last committed state of every VM placed on it.
    pub async fn host_guests(
        &self,
        signed: &Signed<'_>,
        path: &str,
        body: &[u8],
    ) -> Result<Guests, HostCallError> {
        let record = self.host_caller(signed, "POST", path, body).await?;
        let known: Vec<uuid::Uuid> = self
            .inner
            .table
            .read()
            .rows()
            .filter(|r| r.host() == Some(record.id.as_str()))
            .map(|r| r.uuid())
            .collect();
        let mut guests = Vec::with_capacity(known.len());
        for id in &known {
            let data = if self.inner.store.shared() {
                self.inner.store.guest(*id).await.map_err(store_err)?
            } else {
                // One process: every step's state passed through here.
                self.inner.driver.snapshot(*id)
            };
            if let Some(d) = data {
                guests.push((*id, d));
            }
        }
        Ok(Guests { guests, known })
    }
}
