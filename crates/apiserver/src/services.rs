//! The Service REST strategy: cluster IP and node port allocation, as Kubernetes' service
//! registry does it (`pkg/registry/core/service/storage`, `ipallocator`, `portallocator`).
//!
//! Allocation is in memory behind one lock, so concurrent creates never hand out the same
//! address; the store stays the source of truth: the allocation state is rebuilt from the stored
//! Services the first time it is needed after a start, so a restart never duplicates an address.
//! Every change is a [`Reservation`]: addresses it took are given back when it is dropped unless
//! the write that needed them was committed, and addresses the write freed are given back only
//! once it is committed.
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

    /// The allocation state, rebuilt from the stored Services on first use.
    async fn state(&self, store: &Arc<dyn Store>) -> ApiResult<MutexGuard<'_, Allocated>> {
        let cell = self
            .inner
            .state
            .get_or_try_init(|| async {
                let prefix = services_info().key_prefix(None);
                let page = store.list(&prefix, None, None).await?;
                let mut allocated = Allocated::default();
                for kv in &page.items {
                    let svc = objects::decode(kv)?;
                    let held = Held::of(&svc);
                    allocated.ips.extend(held.ip);
                    allocated.ports.extend(held.ports);
                }
                Ok::<_, ApiError>(Mutex::new(allocated))
            })
            .await?;
        // A panic while holding the lock cannot leave the sets half-updated (every change is
        // a single insert/remove), so a poisoned lock is still good.
        Ok(cell.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Allocates what a new Service needs and writes it into `svc`.
    pub async fn on_create(
        &self,
        store: &Arc<dyn Store>,
        info: &ResourceInfo,
        svc: &mut Value,
    ) -> ApiResult<Reservation> {
        let name = objects::name_of(svc).to_string();
        let mut reservation = Reservation::new(self.clone());
        let mut state = self.state(store).await?;
        let mut errors = Vec::new();
        if needs_cluster_ip(svc) {
            self.take_cluster_ip(&mut state, &mut reservation, svc, &mut errors)?;
        }
        if needs_node_ports(svc) {
            self.take_node_ports(
                &mut state,
                &mut reservation,
                svc,
                &BTreeMap::new(),
                &mut errors,
            )?;
        }
        drop(state);
        if !errors.is_empty() {
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
        let mut reservation = Reservation::new(self.clone());
        let before = Held::of(old);
        let mut errors = Vec::new();
        let mut state = self.state(store).await?;
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
            self.take_cluster_ip(&mut state, &mut reservation, svc, &mut errors)?;
        }
        let after_ip = needs_cluster_ip(svc).then(|| cluster_ip(svc)).flatten();
        if let Some(ip) = before.ip
            && after_ip.map(u32::from) != Some(ip)
        {
            reservation.release_ips.push(ip);
        }
        if needs_node_ports(svc) {
            let kept: BTreeMap<u16, ()> = before.ports.iter().map(|p| (*p, ())).collect();
            self.take_node_ports(&mut state, &mut reservation, svc, &kept, &mut errors)?;
        }
        drop(state);
        let after = Held::of(svc);
        for port in before.ports {
            if !after.ports.contains(&port) {
                reservation.release_ports.push(port);
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::invalid(info, &name, &errors));
        }
        Ok(reservation)
    }

    /// Gives back what a Service that is gone from the store held.
    pub async fn on_removed(&self, store: &Arc<dyn Store>, svc: &Value) -> ApiResult<()> {
        let held = Held::of(svc);
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
    fn take_cluster_ip(
        &self,
        state: &mut Allocated,
        reservation: &mut Reservation,
        svc: &mut Value,
        errors: &mut Vec<(String, String)>,
    ) -> ApiResult<()> {
        let cidr = self.inner.cidr;
        let requested = svc
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let ip = if requested.is_empty() {
            // Random start, then the next free one: upstream's allocation order, and it keeps
            // addresses from being reused at once after a delete.
            let size = cidr.size() - 2;
            let start = rand::random_range(0..size);
            let reserved = u32::from(cidr.first());
            let free = (0..size)
                .map(|i| cidr.network + 1 + (start + i) % size)
                .find(|ip| *ip != reserved && !state.ips.contains(ip));
            free.ok_or_else(|| {
                ApiError::internal(format!(
                    "Internal error occurred: failed to allocate a serviceIP: range is full (the range of valid IPs is {cidr})"
                ))
            })?
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
            if state.ips.contains(&ip) {
                errors.push(invalid("provided IP is already allocated"));
                return Ok(());
            }
            ip
        };
        state.ips.insert(ip);
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

    /// Gives every port a node port: the requested one if it is free (or already this
    /// Service's, `kept`), else a free one from the range.
    fn take_node_ports(
        &self,
        state: &mut Allocated,
        reservation: &mut Reservation,
        svc: &mut Value,
        kept: &BTreeMap<u16, ()>,
        errors: &mut Vec<(String, String)>,
    ) -> ApiResult<()> {
        let range = self.inner.node_ports.clone();
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
                if state.ports.contains(&n) {
                    errors.push((
                        field,
                        format!("Invalid value: {requested}: provided port is already allocated"),
                    ));
                    continue;
                }
                state.ports.insert(n);
                reservation.taken_ports.push(n);
                mine.insert(n);
                continue;
            }
            let size = u32::from(range.end() - range.start()) + 1;
            let start = rand::random_range(0..size);
            let free = (0..size)
                .map(|k| (u32::from(*range.start()) + (start + k) % size) as u16)
                .find(|p| !state.ports.contains(p));
            let n = free.ok_or_else(|| {
                ApiError::internal(format!(
                    "Internal error occurred: failed to allocate a nodePort: range is full ({}-{})",
                    range.start(),
                    range.end()
                ))
            })?;
            state.ports.insert(n);
            reservation.taken_ports.push(n);
            mine.insert(n);
            port["nodePort"] = json!(n);
        }
        Ok(())
    }
}

/// Changes one write makes to the allocation: what it took (given back if the write does not
/// happen) and what it freed (given back only once it does).
#[derive(Debug)]
#[must_use = "dropping a reservation gives its addresses back; commit it once the write is stored"]
pub struct Reservation {
    allocator: ServiceAllocator,
    taken_ips: Vec<u32>,
    taken_ports: Vec<u16>,
    release_ips: Vec<u32>,
    release_ports: Vec<u16>,
}

impl Reservation {
    fn new(allocator: ServiceAllocator) -> Self {
        Reservation {
            allocator,
            taken_ips: Vec::new(),
            taken_ports: Vec::new(),
            release_ips: Vec::new(),
            release_ports: Vec::new(),
        }
    }

    /// The write is stored: keep what it took, give back what it freed.
    pub fn commit(mut self) {
        self.taken_ips.clear();
        self.taken_ports.clear();
        let ips = std::mem::take(&mut self.release_ips);
        let ports = std::mem::take(&mut self.release_ports);
        self.give_back(&ips, &ports);
    }

    fn give_back(&self, ips: &[u32], ports: &[u16]) {
        if ips.is_empty() && ports.is_empty() {
            return;
        }
        // A reservation only exists after the state was built.
        if let Some(state) = self.allocator.inner.state.get() {
            let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
            for ip in ips {
                state.ips.remove(ip);
            }
            for port in ports {
                state.ports.remove(port);
            }
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let ips = std::mem::take(&mut self.taken_ips);
        let ports = std::mem::take(&mut self.taken_ports);
        self.give_back(&ips, &ports);
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
