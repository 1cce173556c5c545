//! Where a metadata-document fetch may connect: never to a loopback, private, link-local or
//! other special-use address, checked on every address a name resolves to (so a name re-bound
//! between two lookups cannot reach one).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether a server at `ip` must not be fetched from: loopback, private (RFC 1918), link-local,
/// shared (CGNAT), unspecified, multicast, broadcast, documentation, benchmarking, reserved,
/// unique-local, and the IPv4-mapped, NAT64 and 6to4 forms of any of them.
pub fn is_forbidden_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_forbidden_ipv4(ip),
        IpAddr::V6(ip) => is_forbidden_ipv6(ip),
    }
}

fn is_forbidden_ipv4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0 // "this network", including 0.0.0.0 (RFC 791)
        || a == 10 // private (RFC 1918)
        || (a == 100 && (64..128).contains(&b)) // shared address space, CGNAT (RFC 6598)
        || a == 127 // loopback
        || (a == 169 && b == 254) // link-local (RFC 3927)
        || (a == 172 && (16..32).contains(&b)) // private (RFC 1918)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments (RFC 6890)
        || (a == 192 && b == 0 && c == 2) // documentation TEST-NET-1 (RFC 5737)
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast (RFC 7526)
        || (a == 192 && b == 168) // private (RFC 1918)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking (RFC 2544)
        || (a == 198 && b == 51 && c == 100) // documentation TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // documentation TEST-NET-3
        || a >= 224 // multicast 224/4, reserved 240/4, broadcast
}

fn is_forbidden_ipv6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_ipv4(ip) {
        return is_forbidden_ipv4(v4);
    }
    let s = ip.segments();
    // Only global unicast (2000::/3) reaches a public server. Outside it lie the unspecified
    // and loopback addresses, IPv4-compatible ::/96, discard-only 100::/64, local-use NAT64
    // 64:ff9b:1::/48, unique-local fc00::/7, link-local fe80::/10, site-local fec0::/10 and
    // multicast ff00::/8.
    s[0] & 0xe000 != 0x2000
        || (s[0] == 0x2001 && s[1] == 0) // Teredo (RFC 4380)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation (RFC 3849)
        || (s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0) // benchmarking (RFC 5180)
        || s[0] & 0xfff0 == 0x3ff0 // documentation 3fff::/20 (RFC 9637)
}

/// The IPv4 address an IPv6 address stands for: IPv4-mapped `::ffff:0:0/96`, NAT64
/// `64:ff9b::/96` (RFC 6052) and 6to4 `2002::/16` (RFC 3056).
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let o = ip.octets();
    match ip.segments() {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => {
            Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
        }
        [0x2002, ..] => Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        _ => None,
    }
}

/// Whether the fetch may connect to `ip`. Loopback is allowed only with the test switch, which
/// is how tests serve documents.
pub(super) fn is_allowed_target(ip: IpAddr, allow_loopback: bool) -> bool {
    !is_forbidden_address(ip) || (allow_loopback && ip.to_canonical().is_loopback())
}

/// A DNS resolver that drops forbidden addresses, so the connection can only go to an allowed
/// one whatever the name resolves to (including a name re-bound between two lookups).
pub(super) struct GuardedResolver {
    pub(super) allow_loopback: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("every address of the host is forbidden")]
pub(super) struct ForbiddenAddressError;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_loopback = self.allow_loopback;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if resolved.is_empty() {
                return Err(format!("{host} has no address").into());
            }
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| is_allowed_target(addr.ip(), allow_loopback))
                .collect();
            if allowed.is_empty() {
                return Err(ForbiddenAddressError.into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}
