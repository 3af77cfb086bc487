//! Pod IP allocation: one pool per CIDR.
//!
//! A pool hands out addresses from the network address + 1 upwards, skipping those in use, and
//! takes them back when a pod is deleted. Addresses pods already carry (from before a restart)
//! are marked used when the simulator first sees them. The same pod always gets the same
//! address from a pool while it holds one. A full pool refuses further pods (they get no
//! address from it); the first refusal since the pool last had room says so, the later ones
//! do not, so that many pods bound to one small node CIDR do not flood the log.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

// foldhash rather than SipHash: a restarted cluster marks every pod's address used at once, and
// these maps are keyed by the simulator's own pod keys and CIDRs.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

/// Why a pool handed out no address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllocateError {
    /// The CIDR text does not parse.
    InvalidCidr(String),
    /// Every usable address of `cidr` is held. `first` is true for the first refusal since the
    /// pool last had a free address.
    Exhausted { cidr: String, first: bool },
}

impl fmt::Display for AllocateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllocateError::InvalidCidr(e) => f.write_str(e),
            AllocateError::Exhausted { cidr, .. } => write!(f, "no free address left in {cidr}"),
        }
    }
}

/// A parsed CIDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    base: u128,
    bits: u8,
    v6: bool,
}

impl Cidr {
    /// Parses `10.0.0.0/24` or `fd00::/64`.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (ip, len) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("invalid CIDR {s:?}: missing prefix length"))?;
        let ip: IpAddr = ip.parse().map_err(|e| format!("invalid CIDR {s:?}: {e}"))?;
        let len: u8 = len
            .parse()
            .map_err(|e| format!("invalid CIDR {s:?}: {e}"))?;
        let (v, bits, v6) = match ip {
            IpAddr::V4(a) => (u32::from(a) as u128, 32u8, false),
            IpAddr::V6(a) => (u128::from(a), 128u8, true),
        };
        if len > bits {
            return Err(format!(
                "invalid CIDR {s:?}: prefix longer than the address"
            ));
        }
        let host_bits = bits - len;
        let mask = if host_bits >= 128 {
            0
        } else {
            !((1u128 << host_bits) - 1)
        };
        Ok(Cidr {
            base: v & mask,
            bits: host_bits,
            v6,
        })
    }

    fn size(&self) -> u128 {
        if self.bits >= 127 {
            u128::MAX
        } else {
            1u128 << self.bits
        }
    }

    fn contains(&self, ip: &IpAddr) -> bool {
        match (ip, self.v6) {
            (IpAddr::V4(a), false) => {
                let v = u32::from(*a) as u128;
                v >= self.base && v - self.base < self.size()
            }
            (IpAddr::V6(a), true) => {
                let v = u128::from(*a);
                v >= self.base && v - self.base < self.size()
            }
            _ => false,
        }
    }

    fn offset_of(&self, ip: &IpAddr) -> Option<u128> {
        if !self.contains(ip) {
            return None;
        }
        Some(match ip {
            IpAddr::V4(a) => u32::from(*a) as u128 - self.base,
            IpAddr::V6(a) => u128::from(*a) - self.base,
        })
    }

    fn at(&self, offset: u128) -> IpAddr {
        let v = self.base + offset;
        if self.v6 {
            IpAddr::V6(v.into())
        } else {
            IpAddr::V4((v as u32).into())
        }
    }
}

#[derive(Debug)]
struct Pool {
    cidr: Cidr,
    next: u128,
    used: HashSet<u128>,
    owners: HashMap<String, u128>,
    /// Released addresses, handed out again first (lowest first).
    recycled: BTreeSet<u128>,
    /// Whether a refusal was reported since the pool last had room.
    refused: bool,
}

impl Pool {
    fn new(cidr: Cidr) -> Pool {
        Pool {
            cidr,
            next: 1,
            used: HashSet::new(),
            owners: HashMap::new(),
            recycled: BTreeSet::new(),
            refused: false,
        }
    }

    fn get(&mut self, owner: &str) -> Option<IpAddr> {
        if let Some(o) = self.owners.get(owner) {
            return Some(self.cidr.at(*o));
        }
        // IPv4 keeps the broadcast address out.
        let limit = if self.cidr.v6 {
            self.cidr.size()
        } else {
            self.cidr.size().saturating_sub(1)
        };
        let usable = limit.saturating_sub(1);
        if self.used.len() as u128 >= usable {
            return None;
        }
        while let Some(o) = self.recycled.pop_first() {
            if self.used.insert(o) {
                self.owners.insert(owner.to_string(), o);
                return Some(self.cidr.at(o));
            }
        }
        loop {
            if self.next >= limit {
                self.next = 1;
            }
            let o = self.next;
            self.next += 1;
            if self.used.insert(o) {
                self.owners.insert(owner.to_string(), o);
                return Some(self.cidr.at(o));
            }
        }
    }
}

/// All pools, keyed by CIDR text.
#[derive(Debug, Default)]
pub struct Ipam {
    pools: HashMap<String, Pool>,
    /// The pools each owner holds an address in, so a release does not visit every pool (one
    /// per node with per-node pod CIDRs).
    held: HashMap<String, Vec<String>>,
}

impl Ipam {
    fn pool(&mut self, cidr: &str) -> Result<&mut Pool, AllocateError> {
        if !self.pools.contains_key(cidr) {
            let parsed = Cidr::parse(cidr).map_err(AllocateError::InvalidCidr)?;
            self.pools.insert(cidr.to_string(), Pool::new(parsed));
        }
        Ok(self.pools.get_mut(cidr).expect("just inserted"))
    }

    /// The address of `owner` in `cidr`, allocating one when it has none.
    pub fn allocate(&mut self, cidr: &str, owner: &str) -> Result<IpAddr, AllocateError> {
        let pool = self.pool(cidr)?;
        let Some(ip) = pool.get(owner) else {
            let first = !std::mem::replace(&mut pool.refused, true);
            return Err(AllocateError::Exhausted {
                cidr: cidr.to_string(),
                first,
            });
        };
        self.hold(cidr, owner);
        Ok(ip)
    }

    fn hold(&mut self, cidr: &str, owner: &str) {
        let pools = self.held.entry(owner.to_string()).or_default();
        if !pools.iter().any(|p| p == cidr) {
            pools.push(cidr.to_string());
        }
    }

    /// Records that `owner` already holds `ip` (when it is inside `cidr`).
    pub fn mark_used(&mut self, cidr: &str, owner: &str, ip: &str) {
        let Ok(ip) = ip.parse::<IpAddr>() else { return };
        let Ok(pool) = self.pool(cidr) else { return };
        if let Some(o) = pool.cidr.offset_of(&ip)
            && !pool.owners.contains_key(owner)
            && pool.used.insert(o)
        {
            pool.owners.insert(owner.to_string(), o);
            self.hold(cidr, owner);
        }
    }

    /// Gives back every address `owner` holds.
    pub fn release(&mut self, owner: &str) {
        for cidr in self.held.remove(owner).unwrap_or_default() {
            if let Some(pool) = self.pools.get_mut(&cidr)
                && let Some(o) = pool.owners.remove(owner)
            {
                pool.used.remove(&o);
                pool.recycled.insert(o);
                pool.refused = false;
            }
        }
    }

    /// Addresses in use across pools.
    pub fn in_use(&self) -> usize {
        self.pools.values().map(|p| p.used.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_sequentially_and_recycles() {
        let mut ipam = Ipam::default();
        let a = ipam.allocate("10.0.0.0/30", "a").unwrap();
        let b = ipam.allocate("10.0.0.0/30", "b").unwrap();
        assert_eq!(a.to_string(), "10.0.0.1");
        assert_eq!(b.to_string(), "10.0.0.2");
        assert_eq!(ipam.allocate("10.0.0.0/30", "a").unwrap(), a);
        assert!(ipam.allocate("10.0.0.0/30", "c").is_err());
        ipam.release("a");
        assert_eq!(
            ipam.allocate("10.0.0.0/30", "c").unwrap().to_string(),
            "10.0.0.1"
        );
    }

    #[test]
    fn a_full_pool_reports_its_first_refusal_until_an_address_comes_back() {
        let mut ipam = Ipam::default();
        let cidr = "10.0.0.0/30";
        ipam.allocate(cidr, "a").unwrap();
        ipam.allocate(cidr, "b").unwrap();
        let refusal = |first| {
            Err(AllocateError::Exhausted {
                cidr: cidr.to_string(),
                first,
            })
        };
        assert_eq!(ipam.allocate(cidr, "c"), refusal(true));
        assert_eq!(ipam.allocate(cidr, "d"), refusal(false));
        assert_eq!(ipam.allocate(cidr, "c"), refusal(false));
        // Holders keep their address while the pool is full.
        assert_eq!(ipam.allocate(cidr, "a").unwrap().to_string(), "10.0.0.1");
        ipam.release("b");
        assert_eq!(ipam.allocate(cidr, "c").unwrap().to_string(), "10.0.0.2");
        assert_eq!(ipam.allocate(cidr, "d"), refusal(true));
        assert_eq!(
            ipam.allocate(cidr, "d").unwrap_err().to_string(),
            "no free address left in 10.0.0.0/30"
        );
        assert!(matches!(
            ipam.allocate("10.0.0.0", "e"),
            Err(AllocateError::InvalidCidr(_))
        ));
    }

    #[test]
    fn marks_existing_and_handles_v6() {
        let mut ipam = Ipam::default();
        ipam.mark_used("10.244.1.0/24", "old", "10.244.1.1");
        ipam.mark_used("10.244.1.0/24", "outside", "192.168.0.1");
        assert_eq!(
            ipam.allocate("10.244.1.0/24", "new").unwrap().to_string(),
            "10.244.1.2"
        );
        assert_eq!(
            ipam.allocate("fd00::/120", "x").unwrap().to_string(),
            "fd00::1"
        );
        assert!(Cidr::parse("10.0.0.0").is_err());
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert_eq!(ipam.in_use(), 3);
        ipam.release("old");
        ipam.release("x");
        assert_eq!(ipam.in_use(), 1);
        assert!(ipam.held.keys().eq(["new"].iter()));
    }
}
