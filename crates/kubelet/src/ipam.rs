//! Pod IP addresses out of the node's `spec.podCIDR`.
//!
//! Every pod gets its own address so that two replicas on one node can both listen on
//! containerPort 8080. On this machine the node ranges are inside 127.0.0.0/8, which Linux
//! routes to the loopback interface as a whole: binding 127.64.0.7 needs no set-up at all.
//!
//! The allocator is in memory. After a restart the kubelet rebuilds it from the `podIP` of the
//! pods still bound to the node, so a pod that is restarted keeps its address.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpamError {
    #[error("pod CIDR {0:?} is not an IPv4 CIDR")]
    InvalidCidr(String),
    #[error("pod CIDR {0} has no free addresses")]
    Exhausted(String),
}

/// Allocates addresses of one IPv4 CIDR.
#[derive(Debug)]
pub struct Ipam {
    cidr: String,
    base: u32,
    size: u32,
    used: BTreeSet<u32>,
    /// Where the next search starts: handing out addresses round-robin keeps a freed address
    /// from being reused at once by the next pod (a client may still be talking to it).
    next: u32,
}

impl Ipam {
    /// An allocator for `cidr` (e.g. `127.64.0.0/16`). The network address, the first host
    /// (conventionally the gateway) and the broadcast address are never handed out.
    pub fn new(cidr: &str) -> Result<Ipam, IpamError> {
        let bad = || IpamError::InvalidCidr(cidr.to_string());
        let (addr, prefix) = cidr.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u32 = prefix.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) {
            return Err(bad());
        }
        let size = 1u32 << (32 - prefix);
        let base = u32::from(addr) & !(size - 1);
        Ok(Ipam {
            cidr: cidr.to_string(),
            base,
            size,
            used: BTreeSet::new(),
            next: 2,
        })
    }

    pub fn cidr(&self) -> &str {
        &self.cidr
    }

    fn offset(&self, ip: Ipv4Addr) -> Option<u32> {
        let v = u32::from(ip);
        (v >= self.base && v - self.base < self.size).then(|| v - self.base)
    }

    fn usable(&self, off: u32) -> bool {
        off >= 2 && off < self.size - 1
    }

    /// Whether `ip` belongs to this range and can be given to a pod.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.offset(ip).is_some_and(|o| self.usable(o))
    }

    /// Marks `ip` as taken (a pod that already has it). Returns false if it is outside the
    /// range or already taken.
    pub fn reserve(&mut self, ip: Ipv4Addr) -> bool {
        match self.offset(ip) {
            Some(o) if self.usable(o) => self.used.insert(o),
            _ => false,
        }
    }

    /// A free address.
    pub fn allocate(&mut self) -> Result<Ipv4Addr, IpamError> {
        let usable = self.size - 3;
        if self.used.len() as u32 >= usable {
            return Err(IpamError::Exhausted(self.cidr.clone()));
        }
        let mut off = self.next;
        loop {
            if !self.usable(off) {
                off = 2;
            }
            if self.used.insert(off) {
                self.next = off + 1;
                return Ok(Ipv4Addr::from(self.base + off));
            }
            off += 1;
        }
    }

    /// Gives `ip` back.
    pub fn release(&mut self, ip: Ipv4Addr) {
        if let Some(o) = self.offset(ip) {
            self.used.remove(&o);
        }
    }

    pub fn in_use(&self) -> usize {
        self.used.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_distinct_addresses_in_range() {
        let mut ipam = Ipam::new("127.64.0.0/16").expect("valid");
        let a = ipam.allocate().expect("free");
        let b = ipam.allocate().expect("free");
        assert_eq!(a, Ipv4Addr::new(127, 64, 0, 2));
        assert_eq!(b, Ipv4Addr::new(127, 64, 0, 3));
        assert!(ipam.contains(a));
        assert!(!ipam.contains(Ipv4Addr::new(127, 65, 0, 2)));
        assert!(!ipam.contains(Ipv4Addr::new(127, 64, 0, 0)));
        assert!(!ipam.contains(Ipv4Addr::new(127, 64, 255, 255)));
    }

    #[test]
    fn reserved_addresses_are_skipped_and_released_ones_reused_later() {
        let mut ipam = Ipam::new("10.0.0.0/29").expect("valid");
        assert!(ipam.reserve(Ipv4Addr::new(10, 0, 0, 2)));
        assert!(!ipam.reserve(Ipv4Addr::new(10, 0, 0, 2)));
        let mut got = vec![];
        while let Ok(ip) = ipam.allocate() {
            got.push(ip);
        }
        // .0 network, .1 gateway, .7 broadcast, .2 reserved: .3-.6 remain.
        assert_eq!(got.len(), 4);
        assert_eq!(
            ipam.allocate(),
            Err(IpamError::Exhausted("10.0.0.0/29".into()))
        );
        ipam.release(Ipv4Addr::new(10, 0, 0, 4));
        assert_eq!(ipam.allocate(), Ok(Ipv4Addr::new(10, 0, 0, 4)));
    }

    #[test]
    fn rejects_bad_cidrs() {
        for bad in [
            "127.64.0.0",
            "nope/16",
            "127.64.0.0/31",
            "::1/64",
            "1.2.3.4/x",
        ] {
            assert!(Ipam::new(bad).is_err(), "{bad}");
        }
    }
}
