//! The Service REST strategy: cluster IP and node port allocation, as Kubernetes' service
//! registry does it (`pkg/registry/core/service/storage`, `ipallocator`, `portallocator`).
//!
//! An address or node port belongs to a Service once its claim key is created in the store
//! (`/registry/ranges/serviceips/IP`, `/registry/ranges/servicenodeports/PORT`), before the
//! Service is written: a create is a compare-and-swap, so several API servers over one etcd
//! never hand out one address twice. Each server keeps an in-memory view (rebuilt from the
//! stored Services and claims the first time it is needed after a start) only to pick
//! addresses that are likely free. Every change is a [`Reservation`]: addresses it took are
//! given back (claims deleted) when it is dropped unless the write that needed them was
//! committed, and addresses the write freed are given back only once it is committed. A claim
//! whose write never happened (its server died in between) is removed by the next rebuild.
//!
//! The first address of the range is kept for the `kubernetes` Service (it is only handed out
//! when asked for by name), as Kubernetes does.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use wasmkube_api::registry::ResourceInfo;
use wasmkube_store::Store;

use crate::error::{ApiError, ApiResult};
use crate::objects;

/// Default `--service-cluster-ip-range`.
pub const DEFAULT_SERVICE_CIDR: &str = "127.16.0.0/16";
/// Default `--service-node-port-range`.
pub const DEFAULT_NODE_PORTS: RangeInclusive<u16> = 30000..=32767;

/// An IPv4 range of Service addresses (`--service-cluster-ip-range`). Only loopback ranges are
/// accepted: Service addresses must never route off the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceCidr {
    network: u32,
    prefix: u8,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RangeError {
    #[error(
        "service cluster IP range {0:?} must be a loopback range 127.A.B.C/L with 8 <= L <= 28, e.g. 127.16.0.0/16"
    )]
    Cidr(String),
    #[error("node port range {0:?} must be FIRST-LAST with 1 <= FIRST <= LAST <= 65535")]
    Ports(String),
}

impl std::str::FromStr for ServiceCidr {
    type Err = RangeError;

    fn from_str(s: &str) -> Result<Self, RangeError> {
        let bad = || RangeError::Cidr(s.to_string());
        let (addr, len) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = len.parse().map_err(|_| bad())?;
        if !addr.is_loopback() || !(8..=28).contains(&prefix) {
            return Err(bad());
        }
        let mask = u32::MAX << (32 - u32::from(prefix));
        Ok(ServiceCidr {
            network: u32::from(addr) & mask,
            prefix,
        })
    }
}

impl std::fmt::Display for ServiceCidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.network), self.prefix)
    }
}

impl Default for ServiceCidr {
    fn default() -> Self {
        ServiceCidr {
            network: u32::from(Ipv4Addr::new(127, 16, 0, 0)),
            prefix: 16,
        }
    }
}

impl ServiceCidr {
    fn size(&self) -> u32 {
        1u32 << (32 - u32::from(self.prefix))
    }

    /// Whether `ip` may be given to a Service: inside the range, not its network or broadcast
    /// address.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let ip = u32::from(ip);
        ip > self.network && ip < self.network + self.size() - 1
    }

    /// The N of the `127.N.x.x` addresses in the range (to check it against the pods' range).
    pub fn second_octets(&self) -> RangeInclusive<u8> {
        let first = (self.network >> 16) as u8;
        let last = ((self.network + self.size() - 1) >> 16) as u8;
        first..=last
    }

    /// The address of the `kubernetes` Service: the range's first usable address.
    pub fn first(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network + 1)
    }
}

/// Parses `--service-node-port-range` (`30000-32767`).
pub fn parse_port_range(s: &str) -> Result<RangeInclusive<u16>, RangeError> {
    let bad = || RangeError::Ports(s.to_string());
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let a: u16 = a.trim().parse().map_err(|_| bad())?;
    let b: u16 = b.trim().parse().map_err(|_| bad())?;
    if a == 0 || a > b {
        return Err(bad());
    }
    Ok(a..=b)
}

/// What is allocated now.
#[derive(Debug, Default)]
struct Allocated {
    ips: BTreeSet<u32>,
    ports: BTreeSet<u16>,
}

/// The allocator, shared by every request. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ServiceAllocator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cidr: ServiceCidr,
    node_ports: RangeInclusive<u16>,
    state: tokio::sync::OnceCell<Mutex<Allocated>>,
}

impl Default for ServiceAllocator {
    fn default() -> Self {
        Self::new(ServiceCidr::default(), DEFAULT_NODE_PORTS)
    }
}

impl ServiceAllocator {
    pub fn new(cidr: ServiceCidr, node_ports: RangeInclusive<u16>) -> Self {
        ServiceAllocator {
            inner: Arc::new(Inner {
                cidr,
                node_ports,
                state: tokio::sync::OnceCell::new(),
            }),
        }
    }

    pub fn cidr(&self) -> ServiceCidr {
        self.inner.cidr
    }

    pub fn node_ports(&self) -> RangeInclusive<u16> {
        self.inner.node_ports.clone()
    }

    /// The allocation state, rebuilt from the stored Services and claims on first use.
    async fn cell(&self, store: &Arc<dyn Store>) -> ApiResult<&Mutex<Allocated>> {
        self.inner
            .state
            .get_or_try_init(|| async { Ok(Mutex::new(rebuild(store).await?)) })
            .await
    }

    async fn state(&self, store: &Arc<dyn Store>) -> ApiResult<MutexGuard<'_, Allocated>> {
        // A panic while holding the lock cannot leave the sets half-updated (every change is
        // a single insert/remove), so a poisoned lock is still good.
        Ok(lock(self.cell(store).await?))
    }

    /// Allocates what a new Service needs and writes it into `svc`.
    pub async fn on_create(
        &self,
        store: &Arc<dyn Store>,
        info: &ResourceInfo,
        svc: &mut Value,
    ) -> ApiResult<Reservation> {
        let name = objects::name_of(svc).to_string();
        let mut reservation = Reservation::new(self.clone(), store.clone());
        let mut errors = Vec::new();
        if needs_cluster_ip(svc) {
            self.take_cluster_ip(store, &mut reservation, svc, &mut errors)
                .await?;
        }
        if needs_node_ports(svc) {
            self.take_node_ports(store, &mut reservation, svc, &BTreeMap::new(), &mut errors)
                .await?;
        }
        if !errors.is_empty() {
            reservation.release().await;
            return Err(ApiError::invalid(info, &name, &errors));
        }
        Ok(reservation)
    }

    /// Allocates what an updated Service newly needs and schedules what it no longer needs for
    /// release. `svc` has been through [`prepare_update`] and validation.
    pub async fn on_update(
        &self,
        store: &Arc<dyn Store>,
        info: &ResourceInfo,
        old: &Value,
        svc: &mut Value,
    ) -> ApiResult<Reservation> {
        let name = objects::name_of(svc).to_string();
        let mut reservation = Reservation::new(self.clone(), store.clone());
        let before = Held::of(old);
        let mut errors = Vec::new();
        if needs_cluster_ip(old) && needs_cluster_ip(svc) {
            let old_ip = cluster_ip(old);
            let new_ip = cluster_ip(svc);
            if old_ip != new_ip {
                errors.push((
                    "spec.clusterIP".into(),
                    format!("Invalid value: {new_ip:?}: field is immutable"),
                ));
            }
        } else if needs_cluster_ip(svc) {
            // ExternalName (or headless) → an addressed type: a fresh allocation.
            self.take_cluster_ip(store, &mut reservation, svc, &mut errors)
                .await?;
        }
        let after_ip = needs_cluster_ip(svc).then(|| cluster_ip(svc)).flatten();
        if let Some(ip) = before.ip
            && after_ip.map(u32::from) != Some(ip)
        {
            reservation.release_ips.push(ip);
        }
        if needs_node_ports(svc) {
            let kept: BTreeMap<u16, ()> = before.ports.iter().map(|p| (*p, ())).collect();
            self.take_node_ports(store, &mut reservation, svc, &kept, &mut errors)
                .await?;
        }
        let after = Held::of(svc);
        for port in before.ports {
            if !after.ports.contains(&port) {
                reservation.release_ports.push(port);
            }
        }
        if !errors.is_empty() {
            reservation.release().await;
            return Err(ApiError::invalid(info, &name, &errors));
        }
        Ok(reservation)
    }

    /// Gives back what a Service that is gone from the store held.
    pub async fn on_removed(&self, store: &Arc<dyn Store>, svc: &Value) -> ApiResult<()> {
        let held = Held::of(svc);
        // The claims go first: until they are gone no server may hand the addresses out.
        if let Some(ip) = held.ip {
            unclaim(store, &ip_claim(ip)).await?;
        }
        for port in &held.ports {
            unclaim(store, &port_claim(*port)).await?;
        }
        let mut state = self.state(store).await?;
        if let Some(ip) = held.ip {
            state.ips.remove(&ip);
        }
        for port in held.ports {
            state.ports.remove(&port);
        }
        Ok(())
    }

    /// Field errors go to `errors`; a full range fails the request as a server error, as
    /// upstream does.
    ///
    /// An address is this Service's once its claim is created in the store: the local state
    /// only avoids asking for addresses known to be taken. A claim that already exists is an
    /// address another server handed out; it stays marked here and the next one is tried.
    async fn take_cluster_ip(
        &self,
        store: &Arc<dyn Store>,
        reservation: &mut Reservation,
        svc: &mut Value,
        errors: &mut Vec<(String, String)>,
    ) -> ApiResult<()> {
        let cidr = self.inner.cidr;
        let owner = owner_of(svc);
        let requested = svc
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let ip = if requested.is_empty() {
            let mut refreshed = false;
            loop {
                let picked = {
                    let mut state = self.state(store).await?;
                    // Random start, then the next free one: upstream's allocation order, and
                    // it keeps addresses from being reused at once after a delete.
                    let size = cidr.size() - 2;
                    let start = rand::random_range(0..size);
                    let reserved = u32::from(cidr.first());
                    let free = (0..size)
                        .map(|i| cidr.network + 1 + (start + i) % size)
                        .find(|ip| *ip != reserved && !state.ips.contains(ip));
                    if let Some(ip) = free {
                        state.ips.insert(ip);
                    }
                    free
                };
                let Some(ip) = picked else {
                    // Full as this server sees it; other servers may have freed some since.
                    if !refreshed {
                        refreshed = true;
                        self.refresh(store).await?;
                        continue;
                    }
                    return Err(ApiError::internal(format!(
                        "Internal error occurred: failed to allocate a serviceIP: range is full (the range of valid IPs is {cidr})"
                    )));
                };
                if self.claim_ip(store, ip, &owner).await? {
                    break ip;
                }
            }
        } else {
            let invalid = |why: &str| {
                (
                    "spec.clusterIPs".into(),
                    format!(
                        "Invalid value: []string{{{requested:?}}}: failed to allocate IP {requested}: {why}"
                    ),
                )
            };
            let Ok(addr) = requested.parse::<Ipv4Addr>() else {
                errors.push((
                    "spec.clusterIPs[0]".into(),
                    format!(
                        "Invalid value: {requested:?}: must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
                    ),
                ));
                return Ok(());
            };
            if !cidr.contains(addr) {
                errors.push(invalid(&format!(
                    "the provided IP ({requested}) is not in the valid range. The range of valid IPs is {cidr}"
                )));
                return Ok(());
            }
            let ip = u32::from(addr);
            let free = self.state(store).await?.ips.insert(ip);
            if !free || !self.claim_ip(store, ip, &owner).await? {
                errors.push(invalid("provided IP is already allocated"));
                return Ok(());
            }
            ip
        };
        reservation.taken_ips.push(ip);
        let text = Ipv4Addr::from(ip).to_string();
        svc["spec"]["clusterIP"] = json!(text);
        svc["spec"]["clusterIPs"] = json!([text]);
        if svc.pointer("/spec/ipFamilies").is_none_or(Value::is_null) {
            svc["spec"]["ipFamilies"] = json!(["IPv4"]);
        }
        if svc
            .pointer("/spec/ipFamilyPolicy")
            .is_none_or(Value::is_null)
        {
            svc["spec"]["ipFamilyPolicy"] = json!("SingleStack");
        }
        Ok(())
    }

    /// Rebuilds this server's view from the store: what other servers freed becomes free.
    /// Claims are the truth, so a view rebuilt under a request in flight is still safe: an
    /// address picked from it that turns out taken fails its claim and the next is tried.
    async fn refresh(&self, store: &Arc<dyn Store>) -> ApiResult<()> {
        let fresh = rebuild(store).await?;
        *self.state(store).await? = fresh;
        Ok(())
    }

    /// Claims `ip` (already marked taken locally); false if another server holds it. On a
    /// store failure the local mark is taken back.
    async fn claim_ip(&self, store: &Arc<dyn Store>, ip: u32, owner: &str) -> ApiResult<bool> {
        match claim(store, &ip_claim(ip), owner).await {
            Ok(claimed) => Ok(claimed),
            Err(error) => {
                self.state(store).await?.ips.remove(&ip);
                Err(error)
            }
        }
    }

    async fn claim_port(&self, store: &Arc<dyn Store>, port: u16, owner: &str) -> ApiResult<bool> {
        match claim(store, &port_claim(port), owner).await {
            Ok(claimed) => Ok(claimed),
            Err(error) => {
                self.state(store).await?.ports.remove(&port);
                Err(error)
            }
        }
    }

    /// Gives every port a node port: the requested one if it is free (or already this
    /// Service's, `kept`), else a free one from the range; each claimed as cluster IPs are.
    async fn take_node_ports(
        &self,
        store: &Arc<dyn Store>,
        reservation: &mut Reservation,
        svc: &mut Value,
        kept: &BTreeMap<u16, ()>,
        errors: &mut Vec<(String, String)>,
    ) -> ApiResult<()> {
        let range = self.inner.node_ports.clone();
        let owner = owner_of(svc);
        let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) else {
            return Ok(());
        };
        // One node port may serve a TCP and a UDP port of the same Service.
        let mut mine: BTreeSet<u16> = BTreeSet::new();
        for (i, port) in ports.iter_mut().enumerate() {
            let requested = port.get("nodePort").and_then(Value::as_i64).unwrap_or(0);
            let field = format!("spec.ports[{i}].nodePort");
            if requested != 0 {
                let Some(n) = u16::try_from(requested).ok().filter(|n| range.contains(n)) else {
                    errors.push((
                        field,
                        format!(
                            "Invalid value: {requested}: provided port is not in the valid range. The range of valid ports is {}-{}",
                            range.start(),
                            range.end()
                        ),
                    ));
                    continue;
                };
                if mine.contains(&n) || kept.contains_key(&n) {
                    mine.insert(n);
                    continue;
                }
                let free = self.state(store).await?.ports.insert(n);
                if !free || !self.claim_port(store, n, &owner).await? {
                    errors.push((
                        field,
                        format!("Invalid value: {requested}: provided port is already allocated"),
                    ));
                    continue;
                }
                reservation.taken_ports.push(n);
                mine.insert(n);
                continue;
            }
            let mut refreshed = false;
            let n = loop {
                let picked = {
                    let mut state = self.state(store).await?;
                    let size = u32::from(range.end() - range.start()) + 1;
                    let start = rand::random_range(0..size);
                    let free = (0..size)
                        .map(|k| (u32::from(*range.start()) + (start + k) % size) as u16)
                        .find(|p| !state.ports.contains(p) && !mine.contains(p));
                    if let Some(n) = free {
                        state.ports.insert(n);
                    }
                    free
                };
                let Some(n) = picked else {
                    if !refreshed {
                        refreshed = true;
                        self.refresh(store).await?;
                        // This request's own ports are not stored yet: keep them marked.
                        let mut state = self.state(store).await?;
                        state.ports.extend(reservation.taken_ports.iter().copied());
                        continue;
                    }
                    return Err(ApiError::internal(format!(
                        "Internal error occurred: failed to allocate a nodePort: range is full ({}-{})",
                        range.start(),
                        range.end()
                    )));
                };
                if self.claim_port(store, n, &owner).await? {
                    break n;
                }
            };
            reservation.taken_ports.push(n);
            mine.insert(n);
            port["nodePort"] = json!(n);
        }
        Ok(())
    }
}

/// Where each allocated address and node port is claimed: one key per allocation, created
/// before the Service that holds it is written (Kubernetes' `IPAddress` objects have the same
/// role), so that several API servers over one store never hand out one address twice.
const IP_CLAIMS: &str = "/registry/ranges/serviceips/";
const PORT_CLAIMS: &str = "/registry/ranges/servicenodeports/";

/// A claim no Service holds is a write that never happened (its server died between the
/// claim and the Service); claims younger than this may still be in flight.
const LEAKED_AFTER_SECS: u64 = 60;

fn ip_claim(ip: u32) -> String {
    format!("{IP_CLAIMS}{}", Ipv4Addr::from(ip))
}

fn port_claim(port: u16) -> String {
    format!("{PORT_CLAIMS}{port}")
}

fn owner_of(svc: &Value) -> String {
    let namespace = objects::meta_str(svc, "namespace").unwrap_or("default");
    format!("{namespace}/{}", objects::name_of(svc))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Creates the claim; false if it already exists.
async fn claim(store: &Arc<dyn Store>, key: &str, owner: &str) -> ApiResult<bool> {
    let value = json!({"owner": owner, "time": now_secs()}).to_string();
    match store.create(key, value.into()).await {
        Ok(_) => Ok(true),
        Err(wasmkube_store::Error::AlreadyExists { .. }) => Ok(false),
        Err(other) => Err(other.into()),
    }
}

async fn unclaim(store: &Arc<dyn Store>, key: &str) -> ApiResult<()> {
    match store.delete(key, None).await {
        Ok(_) | Err(wasmkube_store::Error::NotFound { .. }) => Ok(()),
        Err(other) => Err(other.into()),
    }
}

fn lock(mutex: &Mutex<Allocated>) -> MutexGuard<'_, Allocated> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The allocation state from the store: what stored Services hold, and what other servers
/// have claimed for writes in flight. Services stored without claims (before claims existed)
/// get theirs now; claims left behind by a write that never happened are removed.
async fn rebuild(store: &Arc<dyn Store>) -> ApiResult<Allocated> {
    let prefix = services_info().key_prefix(None);
    let page = store.list(&prefix, None, None).await?;
    let mut held_ips = BTreeMap::new();
    let mut held_ports = BTreeMap::new();
    for kv in &page.items {
        let svc = objects::decode(kv)?;
        let held = Held::of(&svc);
        let owner = owner_of(&svc);
        if let Some(ip) = held.ip {
            held_ips.insert(ip_claim(ip), (ip, owner.clone()));
        }
        for port in held.ports {
            held_ports.insert(port_claim(port), (port, owner.clone()));
        }
    }
    let mut allocated = Allocated::default();
    for (ip, _) in held_ips.values() {
        allocated.ips.insert(*ip);
    }
    for (port, _) in held_ports.values() {
        allocated.ports.insert(*port);
    }
    let now = now_secs();
    for (claims, held_keys) in [
        (IP_CLAIMS, held_ips.keys().cloned().collect::<BTreeSet<_>>()),
        (PORT_CLAIMS, held_ports.keys().cloned().collect()),
    ] {
        let page = store.list(claims, None, None).await?;
        let mut seen = BTreeSet::new();
        for kv in &page.items {
            seen.insert(kv.key.clone());
            if held_keys.contains(&kv.key) {
                continue;
            }
            let time = serde_json::from_slice::<Value>(&kv.value)
                .ok()
                .and_then(|v| v.get("time").and_then(Value::as_u64))
                .unwrap_or(0);
            if now.saturating_sub(time) > LEAKED_AFTER_SECS {
                unclaim(store, &kv.key).await?;
                continue;
            }
            let Some(name) = kv.key.strip_prefix(claims) else {
                continue;
            };
            if claims == IP_CLAIMS {
                if let Ok(ip) = name.parse::<Ipv4Addr>() {
                    allocated.ips.insert(u32::from(ip));
                }
            } else if let Ok(port) = name.parse::<u16>() {
                allocated.ports.insert(port);
            }
        }
        for key in held_keys.difference(&seen) {
            let owner = held_ips
                .get(key)
                .map(|(_, o)| o)
                .or_else(|| held_ports.get(key).map(|(_, o)| o))
                .map_or("", String::as_str);
            claim(store, key, owner).await?;
        }
    }
    Ok(allocated)
}

/// Deletes the claims, then frees the addresses locally (until the claims are gone nobody may
/// take the addresses anyway).
async fn give_back(
    allocator: ServiceAllocator,
    store: Arc<dyn Store>,
    ips: Vec<u32>,
    ports: Vec<u16>,
) {
    let mut freed_ips = Vec::new();
    let mut freed_ports = Vec::new();
    for ip in ips {
        match unclaim(&store, &ip_claim(ip)).await {
            Ok(()) => freed_ips.push(ip),
            Err(error) => tracing::warn!(%error, "could not release a Service IP claim"),
        }
    }
    for port in ports {
        match unclaim(&store, &port_claim(port)).await {
            Ok(()) => freed_ports.push(port),
            Err(error) => tracing::warn!(%error, "could not release a node port claim"),
        }
    }
    // A reservation only exists after the state was built.
    if let Some(state) = allocator.inner.state.get() {
        let mut state = lock(state);
        for ip in freed_ips {
            state.ips.remove(&ip);
        }
        for port in freed_ports {
            state.ports.remove(&port);
        }
    }
}

/// Changes one write makes to the allocation: what it took (given back if the write does not
/// happen) and what it freed (given back only once it does).
#[must_use = "dropping a reservation gives its addresses back; commit it once the write is stored"]
pub struct Reservation {
    allocator: ServiceAllocator,
    store: Arc<dyn Store>,
    taken_ips: Vec<u32>,
    taken_ports: Vec<u16>,
    release_ips: Vec<u32>,
    release_ports: Vec<u16>,
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("taken_ips", &self.taken_ips)
            .field("taken_ports", &self.taken_ports)
            .field("release_ips", &self.release_ips)
            .field("release_ports", &self.release_ports)
            .finish_non_exhaustive()
    }
}

impl Reservation {
    fn new(allocator: ServiceAllocator, store: Arc<dyn Store>) -> Self {
        Reservation {
            allocator,
            store,
            taken_ips: Vec::new(),
            taken_ports: Vec::new(),
            release_ips: Vec::new(),
            release_ports: Vec::new(),
        }
    }

    /// The write is stored: keep what it took, give back what it freed (before answering, so
    /// the client's next request finds them free).
    pub async fn commit(mut self) {
        self.taken_ips.clear();
        self.taken_ports.clear();
        let ips = std::mem::take(&mut self.release_ips);
        let ports = std::mem::take(&mut self.release_ports);
        give_back(self.allocator.clone(), self.store.clone(), ips, ports).await;
    }

    /// The write will not happen: give back what it took, now.
    pub async fn release(mut self) {
        self.release_ips.clear();
        self.release_ports.clear();
        let ips = std::mem::take(&mut self.taken_ips);
        let ports = std::mem::take(&mut self.taken_ports);
        give_back(self.allocator.clone(), self.store.clone(), ips, ports).await;
    }

    /// A reservation dropped on a path that could not wait (an error returned early): its
    /// claims are deleted in the background.
    fn give_back(&self, ips: Vec<u32>, ports: Vec<u16>) {
        if ips.is_empty() && ports.is_empty() {
            return;
        }
        let work = give_back(self.allocator.clone(), self.store.clone(), ips, ports);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(work);
            }
            // Outside a runtime nothing can reach the store; the claims are repaired by the
            // next start (they are older than LEAKED_AFTER_SECS by then, or soon).
            Err(_) => tracing::warn!("Service address claims left to the next start's repair"),
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let ips = std::mem::take(&mut self.taken_ips);
        let ports = std::mem::take(&mut self.taken_ports);
        self.give_back(ips, ports);
    }
}

/// What a stored Service holds.
#[derive(Debug, Default)]
struct Held {
    ip: Option<u32>,
    ports: BTreeSet<u16>,
}

impl Held {
    fn of(svc: &Value) -> Self {
        let mut held = Held::default();
        if needs_cluster_ip(svc) {
            held.ip = cluster_ip(svc).map(u32::from);
        }
        if needs_node_ports(svc) {
            held.ports = node_ports(svc).into_iter().collect();
        }
        held
    }
}

fn service_type(svc: &Value) -> &str {
    svc.pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
}

/// Every type but ExternalName gets an address, unless it is headless.
fn needs_cluster_ip(svc: &Value) -> bool {
    service_type(svc) != "ExternalName"
        && svc.pointer("/spec/clusterIP").and_then(Value::as_str) != Some("None")
}

fn needs_node_ports(svc: &Value) -> bool {
    match service_type(svc) {
        "NodePort" => true,
        "LoadBalancer" => svc
            .pointer("/spec/allocateLoadBalancerNodePorts")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        _ => false,
    }
}

fn cluster_ip(svc: &Value) -> Option<Ipv4Addr> {
    svc.pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
}

fn node_ports(svc: &Value) -> Vec<u16> {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
        .filter_map(|n| u16::try_from(n).ok())
        .filter(|n| *n != 0)
        .collect()
}

/// Before an update is defaulted and validated: keeps the allocated values a client left out
/// (upstream's `patchAllocatedValues`: a PUT without `clusterIP` or `nodePort` keeps them) and
/// drops the ones the new type no longer uses if the client left them as they were
/// (`dropTypeDependentFields`: NodePort → ClusterIP frees the node ports).
pub fn prepare_update(old: &Value, svc: &mut Value) {
    let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let old_spec = old.get("spec").cloned().unwrap_or(Value::Null);
    let new_type = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    let old_type = service_type(old).to_string();
    let blank = |v: Option<&Value>| v.is_none_or(|v| v.is_null() || v.as_str() == Some(""));
    if needs_cluster_ip(old) && new_type != "ExternalName" && blank(spec.get("clusterIP")) {
        for field in ["clusterIP", "clusterIPs"] {
            if let Some(v) = old_spec.get(field) {
                spec.insert(field.into(), v.clone());
            }
        }
    }
    if new_type == "ExternalName" && old_type != "ExternalName" {
        // Only if the client did not change them itself: then validation has its say.
        let same = |f: &str| spec.get(f).is_none_or(|v| Some(v) == old_spec.get(f));
        if same("clusterIP") && same("clusterIPs") {
            for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
                spec.remove(field);
            }
        }
    }
    let old_ports: BTreeMap<(i64, String), i64> = old_spec
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let port = p.get("port").and_then(Value::as_i64)?;
            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            let node_port = p.get("nodePort").and_then(Value::as_i64)?;
            Some(((port, proto.to_string()), node_port))
        })
        .collect();
    let keeps_node_ports = match new_type.as_str() {
        "NodePort" => true,
        "LoadBalancer" => spec
            .get("allocateLoadBalancerNodePorts")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        _ => false,
    };
    let old_had_node_ports = needs_node_ports(old);
    for port in spec
        .get_mut("ports")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let Some(number) = port.get("port").and_then(Value::as_i64) else {
            continue;
        };
        let proto = port
            .get("protocol")
            .and_then(Value::as_str)
            .unwrap_or("TCP")
            .to_string();
        let old_node_port = old_ports.get(&(number, proto)).copied();
        let current = port.get("nodePort").and_then(Value::as_i64).unwrap_or(0);
        if keeps_node_ports && old_had_node_ports && current == 0 {
            if let Some(n) = old_node_port {
                port["nodePort"] = json!(n);
            }
        } else if !keeps_node_ports
            && current != 0
            && old_node_port == Some(current)
            && let Some(map) = port.as_object_mut()
        {
            map.remove("nodePort");
        }
    }
}

fn services_info() -> &'static ResourceInfo {
    wasmkube_api::registry::lookup("", "v1", "services")
        .unwrap_or(&wasmkube_api::registry::RESOURCES[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges() {
        let c: ServiceCidr = "127.16.0.0/16".parse().expect("cidr");
        assert_eq!(c.first(), Ipv4Addr::new(127, 16, 0, 1));
        assert!(c.contains(Ipv4Addr::new(127, 16, 255, 254)));
        assert!(!c.contains(Ipv4Addr::new(127, 16, 255, 255)));
        assert!(!c.contains(Ipv4Addr::new(127, 16, 0, 0)));
        assert!(!c.contains(Ipv4Addr::new(127, 17, 0, 1)));
        assert_eq!(c.to_string(), "127.16.0.0/16");
        assert_eq!(c.second_octets(), 16..=16);
        let wide: ServiceCidr = "127.16.0.0/12".parse().expect("cidr");
        assert_eq!(wide.second_octets(), 16..=31);
        let masked: ServiceCidr = "127.17.3.4/16".parse().expect("cidr");
        assert_eq!(masked.to_string(), "127.17.0.0/16");
        assert!("10.0.0.0/16".parse::<ServiceCidr>().is_err());
        assert!("127.16.0.0/30".parse::<ServiceCidr>().is_err());
        assert!("127.16.0.0".parse::<ServiceCidr>().is_err());
        assert_eq!(parse_port_range("30000-32767"), Ok(30000..=32767));
        assert!(parse_port_range("3-2").is_err());
        assert!(parse_port_range("0-2").is_err());
    }

    #[test]
    fn put_without_allocated_values_keeps_them() {
        let old = json!({"spec": {"type": "NodePort", "clusterIP": "127.16.0.9",
            "clusterIPs": ["127.16.0.9"],
            "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]}});
        let mut new = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}]}});
        prepare_update(&old, &mut new);
        assert_eq!(new["spec"]["clusterIP"], "127.16.0.9");
        assert_eq!(new["spec"]["ports"][0]["nodePort"], 30080);
    }

    #[test]
    fn node_port_to_cluster_ip_drops_unchanged_node_ports() {
        let old = json!({"spec": {"type": "NodePort", "clusterIP": "127.16.0.9",
            "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]}});
        let mut new = old.clone();
        new["spec"]["type"] = json!("ClusterIP");
        prepare_update(&old, &mut new);
        assert!(new["spec"]["ports"][0].get("nodePort").is_none());
        // A changed node port is the client's: validation refuses it.
        let mut changed = old.clone();
        changed["spec"]["type"] = json!("ClusterIP");
        changed["spec"]["ports"][0]["nodePort"] = json!(30081);
        prepare_update(&old, &mut changed);
        assert_eq!(changed["spec"]["ports"][0]["nodePort"], 30081);
    }

    #[test]
    fn to_external_name_drops_the_cluster_ip() {
        let old = json!({"spec": {"type": "ClusterIP", "clusterIP": "127.16.0.9",
            "clusterIPs": ["127.16.0.9"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
            "ports": [{"port": 80}]}});
        let mut new = old.clone();
        new["spec"]["type"] = json!("ExternalName");
        new["spec"]["externalName"] = json!("example.com");
        prepare_update(&old, &mut new);
        assert!(new["spec"].get("clusterIP").is_none());
        assert!(new["spec"].get("ipFamilies").is_none());
    }

    #[test]
    fn held_values() {
        let lb = json!({"spec": {"type": "LoadBalancer", "clusterIP": "127.16.0.2",
            "ports": [{"port": 80, "nodePort": 30001}, {"port": 81, "nodePort": 30002}]}});
        let h = Held::of(&lb);
        assert_eq!(h.ip, Some(u32::from(Ipv4Addr::new(127, 16, 0, 2))));
        assert_eq!(h.ports.len(), 2);
        let headless = json!({"spec": {"clusterIP": "None"}});
        assert_eq!(Held::of(&headless).ip, None);
        let ext = json!({"spec": {"type": "ExternalName", "externalName": "x"}});
        assert_eq!(Held::of(&ext).ip, None);
    }
}
