//! An allowlist of source addresses, with opt-in trust in `X-Forwarded-For`.

use std::fmt;
use std::future::{Future, ready};
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use http::header::HeaderName;
use http::{HeaderMap, HeaderValue};
use ipnet::IpNet;

use super::{Verifier, VerifyError, VerifyRequest};

const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Accepts callbacks whose source address is inside one of the given ranges.
///
/// The source is the connection's peer address (see [`PeerAddr`](crate::PeerAddr)).
/// Behind a reverse proxy that peer is the proxy; name the proxies with
/// [`trust_forwarded_for_from`](Self::trust_forwarded_for_from) and the client is read
/// from `X-Forwarded-For` instead: the right-most address that is not a trusted proxy.
/// Without that opt-in the header is ignored, because anyone can send it.
///
/// A request whose peer address is unknown is refused (fail closed).
///
/// ```
/// use std::net::SocketAddr;
/// use http::{HeaderMap, HeaderValue};
/// use suno_callback::verify::{IpAllowlist, VerifyRequest};
///
/// let allowlist = IpAllowlist::new(["203.0.113.0/24", "2001:db8::/32"])?
///     .trust_forwarded_for_from(["10.0.0.0/8"])?;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("x-forwarded-for", "203.0.113.7, 10.1.2.3".parse()?);
/// let proxy: SocketAddr = "10.0.0.1:443".parse()?;
/// let request = VerifyRequest::new(&headers, "task", "complete").with_peer(proxy);
/// assert!(allowlist.check(&request).is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct IpAllowlist {
    allowed: Arc<[IpNet]>,
    trusted_proxies: Arc<[IpNet]>,
}

/// An address range that could not be read (neither `addr` nor `addr/prefix`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidIpRange {
    input: String,
}

impl fmt::Display for InvalidIpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not an IP address or CIDR range: {:?}", self.input)
    }
}

impl std::error::Error for InvalidIpRange {}

fn parse_ranges<I, S>(ranges: I) -> Result<Arc<[IpNet]>, InvalidIpRange>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    ranges
        .into_iter()
        .map(|range| {
            let text = range.as_ref().trim();
            IpNet::from_str(text)
                .or_else(|_| IpAddr::from_str(text).map(IpNet::from))
                .map_err(|_| InvalidIpRange {
                    input: text.to_owned(),
                })
        })
        .collect()
}

impl IpAllowlist {
    /// Allows the given ranges: CIDR (`203.0.113.0/24`) or single addresses.
    ///
    /// # Errors
    ///
    /// An [`InvalidIpRange`] naming the first entry that is neither.
    pub fn new<I, S>(ranges: I) -> Result<Self, InvalidIpRange>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Ok(Self {
            allowed: parse_ranges(ranges)?,
            trusted_proxies: Arc::new([]),
        })
    }

    /// Trusts `X-Forwarded-For` when the peer is one of these proxies.
    ///
    /// # Errors
    ///
    /// An [`InvalidIpRange`] naming the first entry that is neither a CIDR range nor an
    /// address.
    pub fn trust_forwarded_for_from<I, S>(mut self, proxies: I) -> Result<Self, InvalidIpRange>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.trusted_proxies = parse_ranges(proxies)?;
        Ok(self)
    }

    /// The check itself, without the future around it.
    ///
    /// # Errors
    ///
    /// A [`VerifyError`] (answered `401`) when the peer address is unknown, a trusted
    /// proxy's `X-Forwarded-For` is malformed, or the client address is in no allowed
    /// range.
    pub fn check(&self, request: &VerifyRequest<'_>) -> Result<(), VerifyError> {
        let client = self.client_addr(request.peer(), request.headers())?;
        if contains(&self.allowed, client) {
            Ok(())
        } else {
            Err(VerifyError::address_not_allowed())
        }
    }

    /// The address the callback came from, after applying trusted proxies.
    fn client_addr(
        &self,
        peer: Option<SocketAddr>,
        headers: &HeaderMap,
    ) -> Result<IpAddr, VerifyError> {
        let peer = peer.ok_or(VerifyError::unknown_peer())?.ip().to_canonical();
        if !contains(&self.trusted_proxies, peer) {
            return Ok(peer);
        }
        // Right to left, hop by hop: the first address that is not one of our proxies
        // is the client. Entries left of it were written by the client and are never
        // read, so garbage there cannot refuse a good request.
        let values: Vec<&HeaderValue> = headers.get_all(FORWARDED_FOR).iter().collect();
        let mut leftmost = None;
        for value in values.into_iter().rev() {
            let text = value
                .to_str()
                .map_err(|_| VerifyError::malformed_header(&FORWARDED_FOR))?;
            for hop in text.rsplit(',') {
                let hop =
                    parse_hop(hop.trim()).ok_or(VerifyError::malformed_header(&FORWARDED_FOR))?;
                if !contains(&self.trusted_proxies, hop) {
                    return Ok(hop);
                }
                leftmost = Some(hop);
            }
        }
        // Every hop is one of our proxies: the left-most is the closest to the client.
        Ok(leftmost.unwrap_or(peer))
    }
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`[v6]:port`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    IpAddr::from_str(hop)
        .or_else(|_| SocketAddr::from_str(hop).map(|socket| socket.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

fn contains(ranges: &[IpNet], address: IpAddr) -> bool {
    ranges.iter().any(|range| range.contains(&address))
}

impl Verifier for IpAllowlist {
    fn verify(
        &self,
        request: &VerifyRequest<'_>,
    ) -> impl Future<Output = Result<(), VerifyError>> + Send {
        ready(self.check(request))
    }
}

impl fmt::Debug for IpAllowlist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpAllowlist")
            .field("allowed", &self.allowed)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_from<'a>(headers: &'a HeaderMap, peer: &str) -> VerifyRequest<'a> {
        VerifyRequest::new(headers, "t", "complete").with_peer(peer.parse().expect("socket"))
    }

    #[test]
    fn peer_address_is_checked_against_the_ranges() {
        let allowlist = IpAllowlist::new(["203.0.113.0/24", "2001:db8::1"]).expect("ranges");
        let headers = HeaderMap::new();
        assert!(
            allowlist
                .check(&request_from(&headers, "203.0.113.9:1"))
                .is_ok()
        );
        assert!(
            allowlist
                .check(&request_from(&headers, "[2001:db8::1]:1"))
                .is_ok()
        );
        assert!(
            allowlist
                .check(&request_from(&headers, "[::ffff:203.0.113.9]:1"))
                .is_ok()
        );
        let refused = allowlist
            .check(&request_from(&headers, "198.51.100.1:1"))
            .expect_err("outside");
        assert!(refused.is_address_not_allowed());
        let unknown = allowlist
            .check(&VerifyRequest::new(&headers, "t", "complete"))
            .expect_err("no peer");
        assert!(unknown.is_unknown_peer());
    }

    #[test]
    fn forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
        let mut headers = HeaderMap::new();
        headers.insert(FORWARDED_FOR, "203.0.113.9".parse().expect("value"));
        let untrusting = IpAllowlist::new(["203.0.113.0/24"]).expect("ranges");
        assert!(
            untrusting
                .check(&request_from(&headers, "10.0.0.1:1"))
                .is_err()
        );
        let trusting = untrusting
            .trust_forwarded_for_from(["10.0.0.0/8"])
            .expect("proxies");
        assert!(
            trusting
                .check(&request_from(&headers, "10.0.0.1:1"))
                .is_ok()
        );
        // A spoofed left-most entry does not help: the right-most untrusted hop counts.
        headers.insert(
            FORWARDED_FOR,
            "203.0.113.9, 198.51.100.1, 10.0.0.2"
                .parse()
                .expect("value"),
        );
        assert!(
            trusting
                .check(&request_from(&headers, "10.0.0.1:1"))
                .is_err()
        );
        // Garbage left of the client's hop is never read.
        headers.insert(
            FORWARDED_FOR,
            "unknown, 203.0.113.9, 10.0.0.2".parse().expect("value"),
        );
        assert!(
            trusting
                .check(&request_from(&headers, "10.0.0.1:1"))
                .is_ok()
        );
        headers.insert(FORWARDED_FOR, "not-an-ip".parse().expect("value"));
        let malformed = trusting
            .check(&request_from(&headers, "10.0.0.1:1"))
            .expect_err("malformed");
        assert!(malformed.is_malformed_header());
    }

    #[test]
    fn bad_ranges_are_refused() {
        let error = IpAllowlist::new(["10.0.0.0/33"]).expect_err("bad prefix");
        assert!(error.to_string().contains("10.0.0.0/33"));
    }
}
