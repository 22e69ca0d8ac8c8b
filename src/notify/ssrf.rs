//! SSRF guard: refuses webhook targets in private, loopback, link-local and other special-use ranges.
//!
//! Checked twice: when a user enters a URL ([`check_url`]), and again at connect time by
//! [`GuardedResolver`], because a name that resolved to a public address yesterday may
//! resolve to 127.0.0.1 today (DNS rebinding).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Longest URL accepted; longer ones are abuse or mistakes, and they bloat every log line.
pub const MAX_URL_LEN: usize = 2048;
/// Upper bound on one DNS look-up, so a slow resolver cannot stall a request handler.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether `ip` is an address a user-entered webhook must not reach.
pub fn is_blocked(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_blocked_v4(v4),
        IpAddr::V6(v6) => is_blocked_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn is_blocked_v4(ip: Ipv4Addr) -> bool {
    const RANGES: &[([u8; 4], u32)] = &[
        ([0, 0, 0, 0], 8),       // "this network"
        ([10, 0, 0, 0], 8),      // private
        ([100, 64, 0, 0], 10),   // carrier-grade NAT
        ([127, 0, 0, 0], 8),     // loopback
        ([169, 254, 0, 0], 16),  // link-local, incl. cloud metadata 169.254.169.254
        ([172, 16, 0, 0], 12),   // private
        ([192, 0, 0, 0], 24),    // IETF protocol assignments
        ([192, 0, 2, 0], 24),    // TEST-NET-1
        ([192, 88, 99, 0], 24),  // deprecated 6to4 relay anycast
        ([192, 168, 0, 0], 16),  // private
        ([198, 18, 0, 0], 15),   // benchmarking
        ([198, 51, 100, 0], 24), // TEST-NET-2
        ([203, 0, 113, 0], 24),  // TEST-NET-3
        ([224, 0, 0, 0], 4),     // multicast
        ([240, 0, 0, 0], 4),     // reserved, incl. broadcast 255.255.255.255
    ];
    RANGES.iter().any(|&(net, prefix)| in_v4(ip, net, prefix))
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    (u128::from(ip) & mask) == (u128::from(net) & mask)
}

fn v4_at(bits: u128, shift: u32) -> Ipv4Addr {
    // Truncation to the 32 bits of the embedded address is the point here.
    Ipv4Addr::from(((bits >> shift) & 0xffff_ffff) as u32)
}

fn is_blocked_v6(ip: Ipv6Addr) -> bool {
    let bits = u128::from(ip);
    if ip.is_unspecified() || ip.is_loopback() {
        return true;
    }
    // Forms that carry an IPv4 address are judged by that address: otherwise
    // ::ffff:127.0.0.1 would reach loopback through a dual-stack socket.
    let mapped = Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0);
    let translated = Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, 0, 0);
    let compatible = Ipv6Addr::UNSPECIFIED;
    let nat64 = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0);
    if in_v6(ip, mapped, 96)
        || in_v6(ip, translated, 96)
        || in_v6(ip, compatible, 96)
        || in_v6(ip, nat64, 96)
    {
        return is_blocked_v4(v4_at(bits, 0));
    }
    let six_to_four = Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0);
    if in_v6(ip, six_to_four, 16) {
        return is_blocked_v4(v4_at(bits, 80));
    }
    let ranges: [(Ipv6Addr, u32); 8] = [
        (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7), // unique local, incl. fd00:ec2::254
        (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10), // link-local
        (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10), // deprecated site-local
        (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8), // multicast
        (Ipv6Addr::new(0x2001, 0x0db8, 0, 0, 0, 0, 0, 0), 32), // documentation
        (Ipv6Addr::new(0x0100, 0, 0, 0, 0, 0, 0, 0), 64), // discard-only
        (Ipv6Addr::new(0x0064, 0xff9b, 0x0001, 0, 0, 0, 0, 0), 48), // local-use NAT64
        // Teredo hides an (obfuscated) IPv4 address we cannot judge reliably; refuse it.
        (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32),
    ];
    ranges.iter().any(|&(net, prefix)| in_v6(ip, net, prefix))
}

/// Why a user-entered URL was refused. Messages are user-facing (422 `detail`) and never
/// repeat the URL, which may embed a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("webhook URL is too long (at most {MAX_URL_LEN} characters)")]
    TooLong,
    #[error("webhook URL is not a valid absolute URL")]
    Invalid,
    #[error("webhook URL must use http or https, not {0:?}")]
    Scheme(String),
    #[error("webhook URL has no host")]
    NoHost,
    #[error("webhook URL must not contain a user name or password; put credentials in the path or use the signing secret")]
    Credentials,
    #[error("webhook URL points to a private, loopback or link-local address ({0}); such targets are refused")]
    Blocked(IpAddr),
    #[error("webhook URL host {0:?} could not be resolved")]
    Unresolvable(String),
    #[error("webhook URL host {0:?} did not resolve within 5 seconds")]
    ResolveTimeout(String),
}

/// Whether a host name is one that by definition means this machine (RFC 6761), so it is
/// refused without asking DNS.
fn is_localhost_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost")
}

/// Validates a webhook URL a user entered: syntax, scheme, no credentials, and (unless
/// `allow_private`) that the host does not resolve to any blocked address.
pub async fn check_url(raw: &str, allow_private: bool) -> Result<reqwest::Url, UrlError> {
    if raw.len() > MAX_URL_LEN {
        return Err(UrlError::TooLong);
    }
    let url = reqwest::Url::parse(raw.trim()).map_err(|_| UrlError::Invalid)?;
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(UrlError::Scheme(other.chars().take(32).collect())),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or(UrlError::NoHost)?;
    if allow_private {
        return Ok(url);
    }
    if let Some(ip) = literal_ip(host) {
        check_ip(ip)?;
        return Ok(url);
    }
    if is_localhost_name(host) {
        return Err(UrlError::Blocked(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }
    let port = url.port_or_known_default().unwrap_or(80);
    for addr in resolve(host, port).await? {
        check_ip(addr.ip())?;
    }
    Ok(url)
}

/// The address of an IP-literal URL host (`127.0.0.1`, `[::1]`), as `Url::host_str` spells it.
/// The URL parser has already normalised odd IPv4 spellings such as `2130706433`.
pub fn literal_ip(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

fn check_ip(ip: IpAddr) -> Result<(), UrlError> {
    if is_blocked(ip) {
        Err(UrlError::Blocked(ip))
    } else {
        Ok(())
    }
}

async fn resolve(name: &str, port: u16) -> Result<Vec<SocketAddr>, UrlError> {
    let label = || name.chars().take(253).collect::<String>();
    match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name, port))).await {
        Err(_) => Err(UrlError::ResolveTimeout(label())),
        Ok(Err(_)) => Err(UrlError::Unresolvable(label())),
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                Err(UrlError::Unresolvable(label()))
            } else {
                Ok(addrs)
            }
        }
    }
}

/// Connect-time refusal: every address a name resolved to was blocked. A distinct type so the
/// webhook sender can tell it apart from a network failure (it is not worth retrying).
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves only to private, loopback or link-local addresses")]
pub struct BlockedTarget {
    pub host: String,
}

/// reqwest resolver that drops blocked addresses, so the address actually connected to is
/// the one that was checked (no time-of-check/time-of-use gap for DNS rebinding).
///
/// reqwest does not consult resolvers for IP-literal URLs: those are checked by the sender.
#[derive(Debug, Clone, Copy, Default)]
pub struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            if is_localhost_name(&host) {
                return Err(Box::new(BlockedTarget { host }) as _);
            }
            let looked_up =
                tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host.as_str(), 0)))
                    .await
                    .map_err(|_| {
                        std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!("resolving {host} timed out"),
                        )
                    })??;
            let allowed: Vec<SocketAddr> = looked_up.filter(|a| !is_blocked(a.ip())).collect();
            if allowed.is_empty() {
                return Err(Box::new(BlockedTarget { host }) as _);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(s: &str) -> bool {
        is_blocked(s.parse().unwrap())
    }

    #[test]
    fn ipv4_special_ranges_are_blocked() {
        for ip in [
            "127.0.0.1",
            "127.255.255.254",
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.0",
            "172.31.255.255",
            "192.168.0.1",
            "192.168.255.255",
            "169.254.169.254",
            "169.254.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "198.19.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(blocked(ip), "{ip} should be blocked");
        }
    }

    #[test]
    fn ipv4_public_addresses_and_range_boundaries_are_allowed() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.215.14",
            "172.15.255.255",
            "172.32.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "11.0.0.0",
            "9.255.255.255",
            "126.255.255.255",
            "128.0.0.0",
            "223.255.255.255",
        ] {
            assert!(!blocked(ip), "{ip} should be allowed");
        }
    }

    #[test]
    fn ipv6_special_ranges_are_blocked() {
        for ip in [
            "::",
            "::1",
            "fc00::1",
            "fd00:ec2::254",
            "fdff:ffff::1",
            "fe80::1",
            "febf::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "::ffff:0:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "2001::1",
            "100::1",
        ] {
            assert!(blocked(ip), "{ip} should be blocked");
        }
    }

    #[test]
    fn ipv6_public_addresses_are_allowed_including_embedded_public_v4() {
        for ip in [
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "fbff::1",
        ] {
            assert!(!blocked(ip), "{ip} should be allowed");
        }
        assert!(blocked("fec0::1"), "site-local is refused");
    }

    #[tokio::test]
    async fn check_url_refuses_private_and_malformed_targets() {
        for (url, needle) in [
            ("http://127.0.0.1/", "127.0.0.1"),
            (
                "http://169.254.169.254/latest/meta-data/",
                "169.254.169.254",
            ),
            ("http://[::1]/", "::1"),
            ("http://[::ffff:127.0.0.1]/", "private"),
            ("http://localhost:8080/", "private"),
            ("http://LOCALHOST./", "private"),
            ("http://api.localhost/", "private"),
            ("http://0.0.0.0:80/", "0.0.0.0"),
            ("http://10.0.0.5/hook", "10.0.0.5"),
            ("http://2130706433/", "127.0.0.1"),
            ("ftp://example.com/", "http or https"),
            ("file:///etc/passwd", "http or https"),
            ("http://user:pw@example.com/", "user name or password"),
            ("http://user@example.com/", "user name or password"),
            ("not a url", "not a valid"),
            ("/relative/path", "not a valid"),
        ] {
            let err = check_url(url, false).await.unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(needle), "{url}: {msg}");
            assert!(!msg.contains("pw@"), "{msg}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(check_url(&long, false).await, Err(UrlError::TooLong));
        let msg = check_url("http://127.0.0.1/", false)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "webhook URL points to a private, loopback or link-local address (127.0.0.1); such targets are refused"
        );
    }

    #[tokio::test]
    async fn check_url_accepts_public_literals_and_private_when_allowed() {
        let url = check_url("http://93.184.215.14/hook?x=1", false)
            .await
            .unwrap();
        assert_eq!(url.host_str(), Some("93.184.215.14"));
        check_url("https://[2606:4700:4700::1111]/", false)
            .await
            .unwrap();
        check_url("http://127.0.0.1:9/", true).await.unwrap();
        check_url("http://localhost:8080/", true).await.unwrap();
        // allow_private does not relax the syntactic rules.
        assert_eq!(
            check_url("http://u:p@127.0.0.1/", true).await,
            Err(UrlError::Credentials)
        );
        assert!(matches!(
            check_url("gopher://127.0.0.1/", true).await,
            Err(UrlError::Scheme(_))
        ));
    }

    #[tokio::test]
    async fn guarded_resolver_drops_loopback_names() {
        use reqwest::dns::Resolve;
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let err = match GuardedResolver.resolve(name).await {
            Ok(_) => panic!("localhost must not resolve through the guard"),
            Err(e) => e,
        };
        assert!(err.downcast_ref::<BlockedTarget>().is_some(), "{err}");
    }
}
