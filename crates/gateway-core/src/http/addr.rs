//! Which addresses the gateway may fetch a URL from on someone else's say-so.
//!
//! A URL from a caller, or from a provider's answer, must not turn the gateway into a proxy for
//! its own network: the cloud metadata service (169.254.169.254), admin ports on loopback,
//! neighbours on a private range. The rules are kept here, apart from the downloader, so the
//! server can apply the same ones (e.g. to webhook targets).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether the gateway may connect to `ip` to fetch a URL it did not choose.
///
/// With `allow_private` unset, only publicly routable unicast addresses pass. Refused are
/// unspecified, loopback, private (RFC 1918, unique-local `fc00::/7`), link-local, shared
/// CGNAT (`100.64.0.0/10`), documentation, benchmarking, multicast, broadcast and reserved
/// addresses, and IPv6 forms that embed a refused IPv4 address (IPv4-mapped `::ffff:0:0/96`,
/// NAT64 `64:ff9b::/96`, 6to4 `2002::/16`). Outside `2000::/3` no IPv6 address passes.
///
/// `allow_private` is for operators whose media store is on their own network; it allows every
/// address, the cloud metadata service included.
pub fn check_ip(ip: IpAddr, allow_private: bool) -> bool {
    allow_private
        || match ip {
            IpAddr::V4(ip) => v4_is_public(ip),
            IpAddr::V6(ip) => v6_is_public(ip),
        }
}

fn v4_is_public(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network" (RFC 791); Linux connects 0.0.0.0 to loopback
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16: cloud metadata services
        || (a == 100 && b & 0xc0 == 64) // shared address space, CGNAT (RFC 6598)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments (RFC 6890)
        || ip.is_documentation()
        || (a == 198 && b & 0xfe == 18) // benchmarking 198.18/15 (RFC 2544)
        || a >= 224) // multicast 224/4, reserved 240/4, broadcast
}

fn v6_is_public(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_is_public(v4);
    }
    let s = ip.segments();
    // NAT64 (RFC 6052): a translator on the path would connect to the embedded IPv4 address.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4_is_public(embedded_v4(s[6], s[7]));
    }
    // Only global unicast is public. This also refuses ::, ::1, the deprecated IPv4-compatible
    // ::/96, discard-only 100::/64, local NAT64 64:ff9b:1::/48, unique-local fc00::/7,
    // link-local fe80::/10, site-local fec0::/10 and multicast ff00::/8.
    if s[0] & 0xe000 != 0x2000 {
        return false;
    }
    // 6to4 (RFC 3056): a relay would connect to the embedded IPv4 address.
    if s[0] == 0x2002 {
        return v4_is_public(embedded_v4(s[1], s[2]));
    }
    !((s[0] == 0x2001 && s[1] == 0) // Teredo (RFC 4380): tunnels to an IPv4 host
        || (s[0] == 0x2001 && s[1] == 2 && s[2] == 0) // benchmarking 2001:2::/48 (RFC 5180)
        || (s[0] == 0x2001 && s[1] == 0xdb8) // documentation (RFC 3849)
        || (s[0] == 0x3fff && s[1] < 0x1000)) // documentation 3fff::/20 (RFC 9637)
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(high) << 16) | u32::from(low))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_table() {
        for (ip, public) in [
            // IPv4
            ("8.8.8.8", true),
            ("1.1.1.1", true),
            ("93.184.215.14", true),
            ("0.0.0.0", false),
            ("0.1.2.3", false),
            ("127.0.0.1", false),
            ("127.255.255.254", false),
            ("10.0.0.1", false),
            ("10.255.255.255", false),
            ("172.15.255.255", true),
            ("172.16.0.1", false),
            ("172.31.255.255", false),
            ("172.32.0.1", true),
            ("192.168.0.1", false),
            ("169.254.169.254", false),
            ("100.63.255.255", true),
            ("100.64.0.1", false),
            ("100.127.255.255", false),
            ("100.128.0.1", true),
            ("192.0.0.8", false),
            ("192.0.2.1", false),
            ("198.51.100.7", false),
            ("203.0.113.9", false),
            ("198.18.0.1", false),
            ("198.19.255.255", false),
            ("198.20.0.1", true),
            ("224.0.0.1", false),
            ("239.255.255.250", false),
            ("240.0.0.1", false),
            ("255.255.255.255", false),
            // IPv6
            ("2606:4700:4700::1111", true),
            ("2001:4860:4860::8888", true),
            ("::", false),
            ("::1", false),
            ("fe80::1", false),
            ("fec0::1", false),
            ("fc00::1", false),
            ("fd12:3456:789a::1", false),
            ("ff02::1", false),
            ("100::1", false),
            ("2001:db8::1", false),
            ("3fff::1", false),
            ("3fff:fff::1", false),
            ("3fff:1000::1", true),
            ("2001::1", false),
            ("2001:2::1", false),
            // IPv4 embedded in IPv6
            ("::ffff:127.0.0.1", false),
            ("::ffff:10.0.0.1", false),
            ("::ffff:169.254.169.254", false),
            ("::ffff:0.0.0.0", false),
            ("::ffff:8.8.8.8", true),
            ("::127.0.0.1", false),
            ("::8.8.8.8", false),
            ("64:ff9b::7f00:1", false),
            ("64:ff9b::a9fe:a9fe", false),
            ("64:ff9b::808:808", true),
            ("64:ff9b:1::808:808", false),
            ("2002:7f00:1::1", false),
            ("2002:a00:1::1", false),
            ("2002:808:808::1", true),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(check_ip(ip, false), public, "{ip}");
            assert!(check_ip(ip, true), "{ip} with allow_private");
        }
    }
}
