//! Which hosts count as this machine: where plain `http` is acceptable for an issuer, a
//! resource or a configured URL (a loopback URL never leaves the machine).

use std::net::IpAddr;

/// `localhost`, any 127.0.0.0/8 address or `::1` (with or without brackets).
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "127.0.0.1",
            "127.8.0.1",
            "[::1]",
            "::1",
            "LOCALHOST",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "example.com",
            "10.0.0.1",
            "localhost.example.com",
            "0.0.0.0",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
