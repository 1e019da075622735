//! The cluster zone: answers to one question from a snapshot of Services and EndpointSlices,
//! after the Kubernetes DNS specification (what CoreDNS' `kubernetes` plugin serves).
//!
//! | name                                  | answer                                        |
//! |---------------------------------------|-----------------------------------------------|
//! | `svc.ns.svc.DOMAIN` A                 | the ClusterIP; for a headless Service the ready pod IPs |
//! | `svc.ns.svc.DOMAIN` (ExternalName)    | CNAME to `spec.externalName` (not followed: no recursion) |
//! | `_port._tcp.svc.ns.svc.DOMAIN` SRV    | `0 100 PORT svc.ns.svc.DOMAIN` (headless: one per pod, to its hostname) |
//! | `host.svc.ns.svc.DOMAIN` A            | a headless Service's pod with that hostname (or dashed IP) |
//! | `a-b-c-d.ns.pod.DOMAIN` A             | a.b.c.d                                       |
//!
//! Other names in the domain are NXDOMAIN; names that exist without records of the type
//! asked answer NOERROR with no records; names outside the domain are REFUSED.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use hickory_proto::rr::rdata::{A, CNAME, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::Service;

use crate::endpoints::SliceIndex;

/// Kubernetes DNS' record TTL (CoreDNS' default): short, since pods come and go.
pub const TTL: u32 = 5;

/// What a question gets.
#[derive(Debug, PartialEq)]
pub enum Answer {
    Records {
        answers: Vec<Record>,
        additionals: Vec<Record>,
    },
    /// The name exists, but not with records of this type.
    NoData,
    NxDomain,
    /// Not in the cluster domain: this server does no recursion.
    Refused,
}

/// A snapshot of what the zone serves.
pub struct Zone {
    domain: String,
    services: HashMap<(String, String), Arc<Service>>,
    slices: SliceIndex,
}

impl Zone {
    pub fn new(domain: &str, services: Vec<Arc<Service>>, slices: SliceIndex) -> Zone {
        let services = services
            .into_iter()
            .filter_map(|s| {
                let ns = s.metadata.namespace.clone()?;
                let name = s.metadata.name.clone()?;
                Some(((ns, name), s))
            })
            .collect();
        Zone {
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
            services,
            slices,
        }
    }

    /// The SOA record of the zone (for negative answers' authority section).
    pub fn soa(&self) -> Option<Record> {
        let apex = fqdn(&self.domain)?;
        let mname = fqdn(&format!("ns.dns.{}", self.domain))?;
        let rname = fqdn(&format!("hostmaster.{}", self.domain))?;
        Some(Record::from_rdata(
            apex,
            TTL,
            RData::SOA(SOA::new(mname, rname, 1, 7200, 1800, 86400, TTL)),
        ))
    }

    pub fn answer(&self, qname: &Name, qtype: RecordType) -> Answer {
        let name = qname.to_ascii().trim_end_matches('.').to_ascii_lowercase();
        let relative = if name == self.domain {
            ""
        } else if let Some(r) = name.strip_suffix(&format!(".{}", self.domain)) {
            r
        } else {
            return Answer::Refused;
        };
        let labels: Vec<&str> = if relative.is_empty() {
            vec![]
        } else {
            relative.split('.').collect()
        };
        match labels.as_slice() {
            [] => {
                if qtype == RecordType::SOA {
                    match self.soa() {
                        Some(soa) => records(vec![soa], vec![]),
                        None => Answer::NoData,
                    }
                } else {
                    Answer::NoData
                }
            }
            ["svc"] | [_, "svc"] | ["pod"] | [_, "pod"] => Answer::NoData,
            [svc, ns, "svc"] => self.service(ns, svc, qname, qtype),
            [port, proto, svc, ns, "svc"] if port.starts_with('_') && proto.starts_with('_') => {
                self.srv(ns, svc, &port[1..], &proto[1..], qtype)
            }
            [host, svc, ns, "svc"] => self.endpoint(ns, svc, host, qname, qtype),
            [ip, ns, "pod"] => {
                let _ = ns;
                match ip.replace('-', ".").parse::<Ipv4Addr>() {
                    Ok(ip) if qtype == RecordType::A || qtype == RecordType::ANY => {
                        records(vec![a(qname.clone(), ip)], vec![])
                    }
                    Ok(_) => Answer::NoData,
                    Err(_) => Answer::NxDomain,
                }
            }
            _ => Answer::NxDomain,
        }
    }

    fn service(&self, ns: &str, name: &str, qname: &Name, qtype: RecordType) -> Answer {
        let Some(svc) = self.services.get(&(ns.to_string(), name.to_string())) else {
            return Answer::NxDomain;
        };
        let Some(spec) = svc.spec.as_ref() else {
            return Answer::NxDomain;
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            let Some(target) = spec.external_name.as_deref().and_then(fqdn) else {
                return Answer::NxDomain;
            };
            // The CNAME answers every type: the client's resolver follows it.
            return records(
                vec![Record::from_rdata(
                    qname.clone(),
                    TTL,
                    RData::CNAME(CNAME(target)),
                )],
                vec![],
            );
        }
        if !matches!(qtype, RecordType::A | RecordType::ANY) {
            return Answer::NoData;
        }
        let ips = self.service_ips(ns, name, svc);
        if ips.is_empty() {
            return Answer::NoData;
        }
        records(
            ips.into_iter().map(|ip| a(qname.clone(), ip)).collect(),
            vec![],
        )
    }

    /// The ClusterIP, or for a headless Service its ready pods' IPs.
    fn service_ips(&self, ns: &str, name: &str, svc: &Service) -> Vec<Ipv4Addr> {
        match cluster_ip(svc) {
            ClusterIp::Ip(IpAddr::V4(ip)) => vec![ip],
            ClusterIp::Ip(IpAddr::V6(_)) | ClusterIp::Unset => vec![],
            ClusterIp::Headless => self
                .slices
                .ready_addresses(ns, name)
                .into_iter()
                .filter_map(|(ip, _)| match ip {
                    IpAddr::V4(v4) => Some(v4),
                    IpAddr::V6(_) => None,
                })
                .collect(),
        }
    }

    fn srv(&self, ns: &str, name: &str, port: &str, proto: &str, qtype: RecordType) -> Answer {
        let Some(svc) = self.services.get(&(ns.to_string(), name.to_string())) else {
            return Answer::NxDomain;
        };
        let Some(sp) = svc
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .and_then(|ps| {
                ps.iter().find(|p| {
                    p.name.as_deref() == Some(port)
                        && p.protocol
                            .as_deref()
                            .unwrap_or("TCP")
                            .eq_ignore_ascii_case(proto)
                })
            })
        else {
            return Answer::NxDomain;
        };
        if !matches!(qtype, RecordType::SRV | RecordType::ANY) {
            return Answer::NoData;
        }
        let Some(svc_name) = fqdn(&format!("{name}.{ns}.svc.{}", self.domain)) else {
            return Answer::NxDomain;
        };
        let Some(qname) = fqdn(&format!("_{port}._{proto}.{name}.{ns}.svc.{}", self.domain)) else {
            return Answer::NxDomain;
        };
        match cluster_ip(svc) {
            ClusterIp::Headless => {
                let hostnames: HashMap<IpAddr, Option<String>> =
                    self.slices.ready_addresses(ns, name).into_iter().collect();
                let backends = self.slices.backends(ns, name, port);
                let mut answers = Vec::new();
                let mut additionals = Vec::new();
                for b in backends {
                    if !hostnames.contains_key(&b.ip()) {
                        continue;
                    }
                    let IpAddr::V4(v4) = b.ip() else { continue };
                    let host = hostnames
                        .get(&b.ip())
                        .cloned()
                        .flatten()
                        .unwrap_or_else(|| v4.to_string().replace('.', "-"));
                    let Some(target) = fqdn(&format!("{host}.{name}.{ns}.svc.{}", self.domain))
                    else {
                        continue;
                    };
                    answers.push(Record::from_rdata(
                        qname.clone(),
                        TTL,
                        RData::SRV(SRV::new(0, 100, b.port(), target.clone())),
                    ));
                    additionals.push(a(target, v4));
                }
                if answers.is_empty() {
                    return Answer::NoData;
                }
                records(answers, additionals)
            }
            _ => {
                let Ok(port) = u16::try_from(sp.port) else {
                    return Answer::NxDomain;
                };
                let additionals = self
                    .service_ips(ns, name, svc)
                    .into_iter()
                    .map(|ip| a(svc_name.clone(), ip))
                    .collect();
                records(
                    vec![Record::from_rdata(
                        qname,
                        TTL,
                        RData::SRV(SRV::new(0, 100, port, svc_name)),
                    )],
                    additionals,
                )
            }
        }
    }

    fn endpoint(
        &self,
        ns: &str,
        name: &str,
        host: &str,
        qname: &Name,
        qtype: RecordType,
    ) -> Answer {
        let Some(svc) = self.services.get(&(ns.to_string(), name.to_string())) else {
            return Answer::NxDomain;
        };
        if cluster_ip(svc) != ClusterIp::Headless {
            return Answer::NxDomain;
        }
        let found = self
            .slices
            .ready_addresses(ns, name)
            .into_iter()
            .find_map(|(ip, h)| {
                let IpAddr::V4(v4) = ip else { return None };
                let dashed = v4.to_string().replace('.', "-");
                (h.as_deref() == Some(host) || dashed == host).then_some(v4)
            });
        match found {
            None => Answer::NxDomain,
            Some(ip) if matches!(qtype, RecordType::A | RecordType::ANY) => {
                records(vec![a(qname.clone(), ip)], vec![])
            }
            Some(_) => Answer::NoData,
        }
    }
}

#[derive(Debug, PartialEq)]
enum ClusterIp {
    Ip(IpAddr),
    Headless,
    Unset,
}

fn cluster_ip(svc: &Service) -> ClusterIp {
    match svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) {
        Some("None") => ClusterIp::Headless,
        Some(ip) => ip.parse().map(ClusterIp::Ip).unwrap_or(ClusterIp::Unset),
        None => ClusterIp::Unset,
    }
}

fn records(answers: Vec<Record>, additionals: Vec<Record>) -> Answer {
    Answer::Records {
        answers,
        additionals,
    }
}

fn a(name: Name, ip: Ipv4Addr) -> Record {
    Record::from_rdata(name, TTL, RData::A(A(ip)))
}

fn fqdn(name: &str) -> Option<Name> {
    let mut n = Name::from_ascii(name.trim_end_matches('.')).ok()?;
    n.set_fqdn(true);
    Some(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use serde_json::json;

    fn zone() -> Zone {
        let svcs: Vec<Arc<Service>> = vec![
            json!({"metadata": {"name": "web", "namespace": "default"},
                   "spec": {"clusterIP": "127.16.0.5", "ports": [{"name": "http", "port": 80}]}}),
            json!({"metadata": {"name": "db", "namespace": "prod"},
                   "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}}),
            json!({"metadata": {"name": "ext", "namespace": "default"},
                   "spec": {"type": "ExternalName", "externalName": "example.com"}}),
        ]
        .into_iter()
        .map(|v| Arc::new(serde_json::from_value(v).unwrap()))
        .collect();
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": "db-1", "namespace": "prod",
                         "labels": {"kubernetes.io/service-name": "db"}},
            "addressType": "IPv4",
            "ports": [{"name": "pg", "port": 15432}],
            "endpoints": [
                {"addresses": ["127.64.0.7"], "hostname": "db-0", "conditions": {"ready": true}},
                {"addresses": ["127.64.0.8"], "conditions": {"ready": true}},
                {"addresses": ["127.64.0.9"], "conditions": {"ready": false}},
            ],
        }))
        .unwrap();
        Zone::new(
            "cluster.local",
            svcs,
            SliceIndex::new(vec![Arc::new(slice)]),
        )
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn rdata(a: Answer) -> Vec<String> {
        match a {
            Answer::Records { answers, .. } => {
                answers.iter().map(|r| r.data().to_string()).collect()
            }
            other => vec![format!("{other:?}")],
        }
    }

    #[test]
    fn service_a_records() {
        let z = zone();
        assert_eq!(
            rdata(z.answer(&name("web.default.svc.cluster.local."), RecordType::A)),
            vec!["127.16.0.5"]
        );
        // Case does not matter.
        assert_eq!(
            rdata(z.answer(&name("WEB.Default.svc.cluster.local."), RecordType::A)),
            vec!["127.16.0.5"]
        );
        assert_eq!(
            z.answer(&name("web.default.svc.cluster.local."), RecordType::AAAA),
            Answer::NoData
        );
        assert_eq!(
            z.answer(&name("nope.default.svc.cluster.local."), RecordType::A),
            Answer::NxDomain
        );
        assert_eq!(
            z.answer(&name("default.svc.cluster.local."), RecordType::A),
            Answer::NoData
        );
        assert_eq!(
            z.answer(&name("example.com."), RecordType::A),
            Answer::Refused
        );
        assert_eq!(
            z.answer(&name("cluster.local.example.com."), RecordType::A),
            Answer::Refused
        );
    }

    #[test]
    fn headless_services_answer_their_ready_pods() {
        let z = zone();
        assert_eq!(
            rdata(z.answer(&name("db.prod.svc.cluster.local."), RecordType::A)),
            vec!["127.64.0.7", "127.64.0.8"]
        );
        assert_eq!(
            rdata(z.answer(&name("db-0.db.prod.svc.cluster.local."), RecordType::A)),
            vec!["127.64.0.7"]
        );
        assert_eq!(
            rdata(z.answer(
                &name("127-64-0-8.db.prod.svc.cluster.local."),
                RecordType::A
            )),
            vec!["127.64.0.8"]
        );
        assert_eq!(
            z.answer(&name("db-1.db.prod.svc.cluster.local."), RecordType::A),
            Answer::NxDomain
        );
        assert_eq!(
            rdata(z.answer(
                &name("_pg._tcp.db.prod.svc.cluster.local."),
                RecordType::SRV
            )),
            vec![
                "0 100 15432 db-0.db.prod.svc.cluster.local.",
                "0 100 15432 127-64-0-8.db.prod.svc.cluster.local."
            ]
        );
    }

    #[test]
    fn srv_cname_and_pod_records() {
        let z = zone();
        assert_eq!(
            rdata(z.answer(
                &name("_http._tcp.web.default.svc.cluster.local."),
                RecordType::SRV
            )),
            vec!["0 100 80 web.default.svc.cluster.local."]
        );
        assert_eq!(
            z.answer(
                &name("_nope._tcp.web.default.svc.cluster.local."),
                RecordType::SRV
            ),
            Answer::NxDomain
        );
        assert_eq!(
            z.answer(
                &name("_http._udp.web.default.svc.cluster.local."),
                RecordType::SRV
            ),
            Answer::NxDomain
        );
        assert_eq!(
            rdata(z.answer(&name("ext.default.svc.cluster.local."), RecordType::A)),
            vec!["example.com."]
        );
        assert_eq!(
            rdata(z.answer(
                &name("127-64-0-3.default.pod.cluster.local."),
                RecordType::A
            )),
            vec!["127.64.0.3"]
        );
        assert!(matches!(
            z.answer(&name("cluster.local."), RecordType::SOA),
            Answer::Records { .. }
        ));
    }
}
