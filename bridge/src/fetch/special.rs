//! Addresses a fetch refuses by default: every entry of IANA's IPv4 and IPv6 Special-Purpose Address Registries,
//! multicast, all IPv6 space outside global unicast (`2000::/3`), and the deprecated IPv4-compatible and
//! site-local ranges. An IPv4 address written as IPv6 (IPv4-mapped, or through the well-known NAT64 prefix) is
//! judged as the IPv4 address it reaches; translations whose IPv4 side is unknown (local-use NAT64, 6to4, Teredo)
//! are refused whole.
//!
//! A refusal names the rule (the registry entry) and never the address: what a name resolves to is the cluster's
//! business, and repeating it into a product's status would let any owner map internal DNS.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::LazyLock,
};

use ipnet::IpNet;

/// Why an address is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A special-purpose range; `via` when the address reached it written as IPv6.
    Special { rule: &'static str, via: Option<&'static str> },
    /// A range the platform refused with `--fetch-deny-cidr`.
    Denied,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Special { rule, via: None } => f.write_str(rule),
            Self::Special { rule, via: Some(via) } => write!(f, "{rule}, {via}"),
            Self::Denied => f.write_str("a range the platform refuses (--fetch-deny-cidr)"),
        }
    }
}

/// The registries' entries, by range. The longest matching range decides, so order does not matter.
const RULES: &[(&str, &str)] = &[
    // IPv4 Special-Purpose Address Registry.
    ("0.0.0.0/8", "\"this network\" (0.0.0.0/8, RFC 791)"),
    ("10.0.0.0/8", "a private-use address (10.0.0.0/8, RFC 1918)"),
    ("100.64.0.0/10", "a shared (carrier-grade NAT) address (100.64.0.0/10, RFC 6598)"),
    ("127.0.0.0/8", "a loopback address (127.0.0.0/8, RFC 1122)"),
    ("169.254.0.0/16", "a link-local address (169.254.0.0/16, RFC 3927: the cloud metadata service lives there)"),
    ("172.16.0.0/12", "a private-use address (172.16.0.0/12, RFC 1918)"),
    ("192.0.0.0/24", "an IETF protocol assignment (192.0.0.0/24, RFC 6890)"),
    ("192.0.0.0/29", "the IPv4 service continuity prefix (192.0.0.0/29, RFC 7335)"),
    ("192.0.0.8/32", "the IPv4 dummy address (192.0.0.8/32, RFC 7600)"),
    ("192.0.0.9/32", "the Port Control Protocol anycast address (192.0.0.9/32, RFC 7723)"),
    ("192.0.0.10/32", "the TURN anycast address (192.0.0.10/32, RFC 8155)"),
    ("192.0.0.170/31", "a NAT64/DNS64 discovery address (192.0.0.170/31, RFC 8880)"),
    ("192.0.2.0/24", "a documentation address (TEST-NET-1, 192.0.2.0/24, RFC 5737)"),
    ("192.31.196.0/24", "an AS112 service address (192.31.196.0/24, RFC 7535)"),
    ("192.52.193.0/24", "an AMT relay address (192.52.193.0/24, RFC 7450)"),
    ("192.88.99.0/24", "the deprecated 6to4 relay anycast range (192.88.99.0/24, RFC 7526)"),
    ("192.168.0.0/16", "a private-use address (192.168.0.0/16, RFC 1918)"),
    ("192.175.48.0/24", "a direct delegation AS112 service address (192.175.48.0/24, RFC 7534)"),
    ("198.18.0.0/15", "a benchmarking address (198.18.0.0/15, RFC 2544)"),
    ("198.51.100.0/24", "a documentation address (TEST-NET-2, 198.51.100.0/24, RFC 5737)"),
    ("203.0.113.0/24", "a documentation address (TEST-NET-3, 203.0.113.0/24, RFC 5737)"),
    ("224.0.0.0/4", "a multicast address (224.0.0.0/4, RFC 5771)"),
    ("240.0.0.0/4", "a reserved address (240.0.0.0/4, RFC 1112)"),
    ("255.255.255.255/32", "the limited broadcast address (255.255.255.255/32, RFC 919)"),
    // IPv6 Special-Purpose Address Registry, and the deprecated ranges still routable somewhere.
    ("::/128", "the unspecified address (::/128, RFC 4291)"),
    ("::1/128", "the loopback address (::1/128, RFC 4291)"),
    ("::/96", "an IPv4-compatible IPv6 address (::/96, deprecated by RFC 4291)"),
    ("64:ff9b:1::/48", "a local-use IPv4/IPv6 translation address (64:ff9b:1::/48, RFC 8215)"),
    ("100::/64", "a discard-only address (100::/64, RFC 6666)"),
    ("100:0:0:1::/64", "a dummy IPv6 prefix address (100:0:0:1::/64, RFC 9780)"),
    ("2001::/23", "an IETF protocol assignment (2001::/23, RFC 2928)"),
    ("2001::/32", "a Teredo address (2001::/32, RFC 4380)"),
    ("2001:1::1/128", "the Port Control Protocol anycast address (2001:1::1/128, RFC 7723)"),
    ("2001:1::2/128", "the TURN anycast address (2001:1::2/128, RFC 8155)"),
    ("2001:1::3/128", "the DNS-SD service registration anycast address (2001:1::3/128, RFC 9665)"),
    ("2001:2::/48", "a benchmarking address (2001:2::/48, RFC 5180)"),
    ("2001:3::/32", "an AMT address (2001:3::/32, RFC 7450)"),
    ("2001:4:112::/48", "an AS112-v6 service address (2001:4:112::/48, RFC 7535)"),
    ("2001:10::/28", "a deprecated ORCHID address (2001:10::/28, RFC 4843)"),
    ("2001:20::/28", "an ORCHIDv2 address (2001:20::/28, RFC 7343)"),
    ("2001:30::/28", "a drone remote ID entity tag (2001:30::/28, RFC 9374)"),
    ("2001:db8::/32", "a documentation address (2001:db8::/32, RFC 3849)"),
    ("2002::/16", "a 6to4 address (2002::/16, RFC 3056: it may wrap an internal IPv4 address)"),
    ("2620:4f:8000::/48", "a direct delegation AS112 service address (2620:4f:8000::/48, RFC 7534)"),
    ("3fff::/20", "a documentation address (3fff::/20, RFC 9637)"),
    ("5f00::/16", "a segment routing (SRv6) SID (5f00::/16, RFC 9602)"),
    ("fc00::/7", "a unique local address (fc00::/7, RFC 4193)"),
    ("fe80::/10", "a link-local address (fe80::/10, RFC 4291)"),
    ("fec0::/10", "a site-local address (fec0::/10, deprecated by RFC 3879)"),
    ("ff00::/8", "a multicast address (ff00::/8, RFC 4291)"),
];

const NOT_GLOBAL_UNICAST: &str = "a reserved IPv6 address (outside global unicast 2000::/3, RFC 4291)";

static PARSED: LazyLock<Vec<(IpNet, &'static str)>> =
    LazyLock::new(|| RULES.iter().map(|(net, rule)| (net.parse().expect("a valid range"), *rule)).collect());

/// The address a connection to `ip` reaches, and how it was written when that differs: an IPv4-mapped address
/// or the well-known NAT64 prefix (`64:ff9b::/96`, RFC 6052) carry an IPv4 address in their last 32 bits.
pub fn reached(ip: IpAddr) -> (IpAddr, Option<&'static str>) {
    let IpAddr::V6(v6) = ip else { return (ip, None) };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return (IpAddr::V4(v4), Some("written as an IPv4-mapped IPv6 address"));
    }
    let nat64: Ipv6Addr = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0);
    if v6.segments()[..6] == nat64.segments()[..6] {
        let [.., a, b, c, d] = v6.octets();
        return (IpAddr::V4(Ipv4Addr::new(a, b, c, d)), Some("reached through NAT64 (64:ff9b::/96)"));
    }
    (ip, None)
}

/// The rule that refuses `ip` (as `reached` returned it), if any.
pub fn rule(ip: IpAddr) -> Option<&'static str> {
    let special = PARSED.iter().filter(|(net, _)| net.contains(&ip)).max_by_key(|(net, _)| net.prefix_len());
    match (special, ip) {
        (Some((_, rule)), _) => Some(rule),
        (None, IpAddr::V6(v6)) if v6.segments()[0] & 0xe000 != 0x2000 => Some(NOT_GLOBAL_UNICAST),
        (None, _) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(ip: &str) -> Option<String> {
        let (reached, via) = reached(ip.parse().unwrap());
        rule(reached).map(|rule| Refusal::Special { rule, via }.to_string())
    }

    /// One address in every entry of both registries, and the rule each must be refused by.
    #[test]
    fn every_special_purpose_range_is_refused_by_its_own_rule() {
        let cases = [
            ("0.0.0.0", "\"this network\""),
            ("0.1.2.3", "\"this network\""),
            ("10.96.0.1", "private-use address (10.0.0.0/8"),
            ("100.100.1.1", "shared (carrier-grade NAT)"),
            ("127.0.0.1", "loopback address (127.0.0.0/8"),
            ("127.255.255.254", "loopback address (127.0.0.0/8"),
            ("169.254.169.254", "link-local address (169.254.0.0/16"),
            ("172.20.0.5", "private-use address (172.16.0.0/12"),
            ("192.0.0.1", "IPv4 service continuity prefix"),
            ("192.0.0.8", "IPv4 dummy address"),
            ("192.0.0.9", "Port Control Protocol anycast address (192.0.0.9/32"),
            ("192.0.0.10", "TURN anycast address (192.0.0.10/32"),
            ("192.0.0.170", "NAT64/DNS64 discovery"),
            ("192.0.0.171", "NAT64/DNS64 discovery"),
            ("192.0.0.200", "IETF protocol assignment (192.0.0.0/24"),
            ("192.0.2.7", "TEST-NET-1"),
            ("192.31.196.1", "AS112 service address (192.31.196.0/24"),
            ("192.52.193.1", "AMT relay address"),
            ("192.88.99.1", "6to4 relay anycast"),
            ("192.168.1.1", "private-use address (192.168.0.0/16"),
            ("192.175.48.1", "direct delegation AS112 service address (192.175.48.0/24"),
            ("198.18.0.1", "benchmarking address (198.18.0.0/15"),
            ("198.19.255.255", "benchmarking address (198.18.0.0/15"),
            ("198.51.100.7", "TEST-NET-2"),
            ("203.0.113.7", "TEST-NET-3"),
            ("224.0.0.251", "multicast address (224.0.0.0/4"),
            ("239.255.255.250", "multicast address (224.0.0.0/4"),
            ("240.0.0.1", "reserved address (240.0.0.0/4"),
            ("255.255.255.255", "limited broadcast"),
            ("::", "unspecified address"),
            ("::1", "loopback address (::1/128"),
            ("::127.0.0.1", "IPv4-compatible"),
            ("::8.8.8.8", "IPv4-compatible"),
            ("::ffff:127.0.0.1", "loopback address (127.0.0.0/8, RFC 1122), written as an IPv4-mapped"),
            ("::ffff:169.254.169.254", "link-local address (169.254.0.0/16"),
            ("64:ff9b::127.0.0.1", "loopback address (127.0.0.0/8, RFC 1122), reached through NAT64"),
            ("64:ff9b::10.1.2.3", "private-use address (10.0.0.0/8, RFC 1918), reached through NAT64"),
            ("64:ff9b::169.254.169.254", "link-local address (169.254.0.0/16"),
            ("64:ff9b:1::a01:203", "local-use IPv4/IPv6 translation"),
            ("64:ff9b:1:ffff::1", "local-use IPv4/IPv6 translation"),
            ("100::1", "discard-only"),
            ("100:0:0:1::1", "dummy IPv6 prefix"),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
            ("2001:1::1", "Port Control Protocol anycast address (2001:1::1/128"),
            ("2001:1::2", "TURN anycast address (2001:1::2/128"),
            ("2001:1::3", "DNS-SD service registration"),
            ("2001:1::4", "IETF protocol assignment (2001::/23"),
            ("2001:2::1", "benchmarking address (2001:2::/48"),
            ("2001:3::1", "AMT address"),
            ("2001:4:112::1", "AS112-v6"),
            ("2001:10::1", "deprecated ORCHID"),
            ("2001:20::1", "ORCHIDv2"),
            ("2001:30::1", "drone remote ID"),
            ("2001:1ff::1", "IETF protocol assignment (2001::/23"),
            ("2001:db8::1", "documentation address (2001:db8::/32"),
            ("2002:a00:1::1", "6to4"),
            ("2002:c0a8:101::1", "6to4"),
            ("2002:7f00:1::1", "6to4"),
            ("2620:4f:8000::1", "direct delegation AS112 service address (2620:4f:8000::/48"),
            ("3fff::1", "documentation address (3fff::/20"),
            ("5f00::1", "segment routing"),
            ("fd00::1", "unique local"),
            ("fc00::1", "unique local"),
            ("fe80::1", "link-local address (fe80::/10"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast address (ff00::/8"),
            ("4000::1", "outside global unicast"),
            ("::2", "IPv4-compatible"),
            ("1::1", "outside global unicast"),
        ];
        for (ip, rule) in cases {
            let refusal = judged(ip).unwrap_or_else(|| panic!("{ip} must be refused ({rule})"));
            assert!(refusal.contains(rule), "{ip}: {refusal:?} should be the rule {rule:?}");
        }
    }

    #[test]
    fn a_refusal_names_the_rule_not_the_address() {
        for ip in ["10.96.0.1", "169.254.169.254", "192.168.7.9", "fd00::1234", "64:ff9b::a00:7", "::ffff:127.0.0.9"] {
            let refusal = judged(ip).unwrap();
            let (reached, _) = reached(ip.parse().unwrap());
            assert!(!refusal.contains(ip) && !refusal.contains(&reached.to_string()), "{ip} echoed: {refusal}");
        }
    }

    #[test]
    fn public_addresses_pass_however_they_are_written() {
        for ip in [
            "8.8.8.8",
            "93.184.216.34",
            "1.1.1.1",
            "192.0.1.1",
            "192.0.3.1",
            "2606:2800:220:1:248:1893:25c8:1946",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2001:200::1",
        ] {
            assert_eq!(judged(ip), None, "{ip} is public");
        }
    }
}
