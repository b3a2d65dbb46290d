//! Who may see and act: the authorization hook, the ready-made bearer tokens and HTTP
//! basic credentials, the login session cookie, the CSRF tokens and the same-origin
//! check. A leaf module of the console.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use http::request::Parts;
use http::{HeaderMap, header};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What a request may do in the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Nothing: the request is answered `403` (or sent to the login form).
    Forbidden,
    /// See every page; no action is shown and every `POST` is answered `403`.
    ReadOnly,
    /// See and act: replay, discard, prune, poll now.
    All,
}

/// An authorization hook's answer: the access, and who it is for (written in the log
/// line of each action).
///
/// ```
/// use suno_callback::console::{Access, Grant};
///
/// let grant = Grant::read_only("auditor");
/// assert_eq!(grant.access(), Access::ReadOnly);
/// assert_eq!(grant.who(), "auditor");
/// assert_eq!(Grant::forbidden().access(), Access::Forbidden);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    access: Access,
    who: String,
}

impl Grant {
    /// Every page and every action, for `who`.
    pub fn all(who: impl Into<String>) -> Self {
        Self {
            access: Access::All,
            who: who.into(),
        }
    }

    /// Every page and no action, for `who`.
    pub fn read_only(who: impl Into<String>) -> Self {
        Self {
            access: Access::ReadOnly,
            who: who.into(),
        }
    }

    /// Nothing.
    pub fn forbidden() -> Self {
        Self {
            access: Access::Forbidden,
            who: String::new(),
        }
    }

    /// The access.
    pub fn access(&self) -> Access {
        self.access
    }

    /// Who it is for.
    pub fn who(&self) -> &str {
        &self.who
    }
}

/// The authorization hook: sees the request's head (method, path, headers, extensions
/// such as the peer address) and answers. Any `Fn(&Parts) -> Grant` is one.
///
/// ```
/// use suno_callback::console::{Authorize, Grant};
///
/// // Behind a proxy that authenticates and names the user in a header:
/// let hook = |parts: &http::request::Parts| match parts.headers.get("x-user") {
///     Some(user) if user == "ops" => Grant::all("ops"),
///     Some(_) => Grant::read_only("staff"),
///     None => Grant::forbidden(),
/// };
/// let request = http::Request::builder().header("x-user", "ops").body(()).unwrap();
/// let (parts, ()) = request.into_parts();
/// assert_eq!(hook.authorize(&parts), Grant::all("ops"));
/// ```
pub trait Authorize: Send + Sync + 'static {
    /// The request's access.
    fn authorize(&self, parts: &Parts) -> Grant;
}

impl<F> Authorize for F
where
    F: Fn(&Parts) -> Grant + Send + Sync + 'static,
{
    fn authorize(&self, parts: &Parts) -> Grant {
        self(parts)
    }
}

/// A secret compared in constant time, never shown by `Debug`.
#[derive(Clone)]
pub(crate) struct Secret(pub(crate) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Whether `a` and `b` are equal, in a time that depends on their lengths only.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A bearer token and the access it gives.
#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub(crate) secret: Secret,
    pub(crate) access: Access,
}

/// HTTP basic credentials and the access they give.
#[derive(Clone, Debug)]
pub(crate) struct Basic {
    pub(crate) user: String,
    pub(crate) password: Secret,
    pub(crate) access: Access,
}

/// The console's access settings and the key of its sessions and CSRF tokens.
#[derive(Clone)]
pub(crate) struct Gate {
    pub(crate) tokens: Vec<Token>,
    pub(crate) basic: Vec<Basic>,
    pub(crate) hook: Option<Arc<dyn Authorize>>,
    pub(crate) loopback_only: bool,
    /// Signs session cookies and CSRF tokens; random per console, so a restart ends
    /// the sessions.
    key: [u8; 32],
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("tokens", &self.tokens)
            .field("basic", &self.basic)
            .field("hook", &self.hook.is_some())
            .field("loopback_only", &self.loopback_only)
            .finish_non_exhaustive()
    }
}

/// The session cookie's name.
pub(crate) const COOKIE: &str = "suno_console";
/// How long a login lasts (12 hours).
pub(crate) const SESSION_SECONDS: u64 = 12 * 60 * 60;

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

impl Gate {
    pub(crate) fn new(
        tokens: Vec<Token>,
        basic: Vec<Basic>,
        hook: Option<Arc<dyn Authorize>>,
        loopback_only: bool,
    ) -> Self {
        let mut key = [0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            // No OS randomness: a key from the clock and the address space is still
            // unknown to a remote sender, and sessions only last this process.
            let seed = format!("{:?}{:p}", SystemTime::now(), &key);
            key.copy_from_slice(&sha2::Digest::finalize(
                <Sha256 as sha2::Digest>::new_with_prefix(seed),
            ));
        }
        Self {
            tokens,
            basic,
            hook,
            loopback_only,
            key,
        }
    }

    fn mac(&self, message: &str) -> String {
        // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
        let mut mac =
            <HmacSha256 as KeyInit>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        mac.update(message.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// Whether the login form is offered (bearer tokens are configured).
    pub(crate) fn has_login(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// Whether a forbidden request is asked for HTTP basic credentials.
    pub(crate) fn has_basic(&self) -> bool {
        !self.basic.is_empty()
    }

    /// The access of a request: its session cookie, its bearer token, its basic
    /// credentials, the hook, then the loopback rule, in that order; the first that
    /// grants anything wins.
    pub(crate) fn authorize(&self, parts: &Parts) -> Grant {
        if let Some(grant) = self.session(&parts.headers) {
            return grant;
        }
        if let Some(token) = bearer(&parts.headers)
            && let Some(grant) = self.token_grant(token)
        {
            return grant;
        }
        if let Some((user, password)) = basic(&parts.headers) {
            for basic in &self.basic {
                // Both compared, whatever the first answer, so timing tells nothing.
                let user_ok = same(user.as_bytes(), basic.user.as_bytes());
                let password_ok = same(password.as_bytes(), basic.password.0.as_bytes());
                if user_ok & password_ok {
                    return grant_of(basic.access, &basic.user);
                }
            }
        }
        if let Some(hook) = &self.hook {
            let grant = hook.authorize(parts);
            if grant.access != Access::Forbidden {
                return grant;
            }
        }
        if self.loopback_only
            && crate::pipeline::intake::peer_addr(&parts.extensions)
                .is_some_and(|peer: SocketAddr| peer.ip().is_loopback())
            && from_this_machine(&parts.headers)
        {
            return Grant::all("loopback");
        }
        Grant::forbidden()
    }

    /// The grant of a bearer token, if it is one of the configured ones.
    pub(crate) fn token_grant(&self, token: &str) -> Option<Grant> {
        self.token_index(token)
            .map(|index| grant_of(self.tokens[index].access, &format!("token {}", index + 1)))
    }

    fn token_index(&self, token: &str) -> Option<usize> {
        let mut found = None;
        for (index, configured) in self.tokens.iter().enumerate() {
            if same(token.as_bytes(), configured.secret.0.as_bytes()) && found.is_none() {
                found = Some(index);
            }
        }
        found
    }

    /// A session cookie's value for the token, if it is a configured one.
    pub(crate) fn login(&self, token: &str) -> Option<String> {
        let index = self.token_index(token)?;
        let expires = unix_seconds() + SESSION_SECONDS;
        let body = format!("{index}.{expires}");
        let mac = self.mac(&format!("session|{body}"));
        Some(format!("{body}.{mac}"))
    }

    fn session(&self, headers: &HeaderMap) -> Option<Grant> {
        let value = cookie(headers, COOKIE)?;
        let (body, mac) = value.rsplit_once('.')?;
        if !same(
            mac.as_bytes(),
            self.mac(&format!("session|{body}")).as_bytes(),
        ) {
            return None;
        }
        let (index, expires) = body.split_once('.')?;
        let index: usize = index.parse().ok()?;
        let expires: u64 = expires.parse().ok()?;
        if expires < unix_seconds() {
            return None;
        }
        let token = self.tokens.get(index)?;
        Some(grant_of(token.access, &format!("token {}", index + 1)))
    }

    /// The CSRF token of the forms shown to `who`.
    pub(crate) fn csrf(&self, who: &str) -> String {
        self.mac(&format!("csrf|{who}"))[..32].to_owned()
    }

    /// Whether `token` is `who`'s CSRF token.
    pub(crate) fn csrf_ok(&self, who: &str, token: &str) -> bool {
        same(token.as_bytes(), self.csrf(who).as_bytes())
    }
}

fn grant_of(access: Access, who: &str) -> Grant {
    Grant {
        access,
        who: who.to_owned(),
    }
}

/// The `Authorization: Bearer …` token.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// The `Authorization: Basic …` user and password.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The value of the cookie `name`.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Whether a `POST` comes from a page of the console's own origin: a browser's
/// `Sec-Fetch-Site` must be `same-origin` (or `none`, typed by the user); without it,
/// an `Origin` must name the request's own host. A client that sends neither (curl, a
/// script) passes: it carries no victim's cookie it did not mean to send, and still
/// needs its credentials and the CSRF token.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    // A browser that sends it says it best (its `Origin` may be `null` under a strict
    // referrer policy).
    if let Some(site) = headers.get("sec-fetch-site") {
        return site == "same-origin" || site == "none";
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let Some(host) = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
    else {
        return false;
    };
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    authority.is_some_and(|authority| authority.eq_ignore_ascii_case(host))
}

/// Whether a request from a loopback peer was meant for this machine: no proxy speaks
/// for someone else (`Forwarded`, `X-Forwarded-For`, `X-Real-IP`), and `Host`, when
/// given, names a loopback host. A page of another site whose name was rebound to
/// 127.0.0.1 (DNS rebinding) still sends its own name in `Host`.
fn from_this_machine(headers: &HeaderMap) -> bool {
    if ["forwarded", "x-forwarded-for", "x-real-ip"]
        .iter()
        .any(|name| headers.contains_key(*name))
    {
        return false;
    }
    let Some(host) = headers.get(header::HOST) else {
        return true;
    };
    let Ok(host) = host.to_str() else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']').map_or("", |(name, _)| name),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut request = http::Request::builder();
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).expect("request").into_parts().0
    }

    fn gate() -> Gate {
        Gate::new(
            vec![
                Token {
                    secret: Secret("all-token".into()),
                    access: Access::All,
                },
                Token {
                    secret: Secret("ro-token".into()),
                    access: Access::ReadOnly,
                },
            ],
            vec![Basic {
                user: "ops".into(),
                password: Secret("pw".into()),
                access: Access::All,
            }],
            None,
            false,
        )
    }

    #[test]
    fn tokens_credentials_and_sessions_grant_their_access() {
        let gate = gate();
        let all = gate.authorize(&parts(&[("authorization", "Bearer all-token")]));
        assert_eq!(all.access(), Access::All);
        let ro = gate.authorize(&parts(&[("authorization", "bearer ro-token")]));
        assert_eq!(ro.access(), Access::ReadOnly);
        let wrong = gate.authorize(&parts(&[("authorization", "Bearer all-tokex")]));
        assert_eq!(wrong.access(), Access::Forbidden);
        let basic = format!("Basic {}", STANDARD.encode("ops:pw"));
        assert_eq!(
            gate.authorize(&parts(&[("authorization", &basic)])),
            Grant::all("ops")
        );
        let bad = format!("Basic {}", STANDARD.encode("ops:px"));
        assert_eq!(
            gate.authorize(&parts(&[("authorization", &bad)])).access(),
            Access::Forbidden
        );
        let session = gate.login("ro-token").expect("a configured token");
        let cookie = format!("other=1; {COOKIE}={session}");
        assert_eq!(
            gate.authorize(&parts(&[("cookie", &cookie)])).access(),
            Access::ReadOnly
        );
        let forged = format!("{COOKIE}=0.99999999999.{}", "0".repeat(64));
        assert_eq!(
            gate.authorize(&parts(&[("cookie", &forged)])).access(),
            Access::Forbidden
        );
        assert!(gate.login("nope").is_none());
        assert_eq!(gate.authorize(&parts(&[])).access(), Access::Forbidden);
    }

    #[test]
    fn csrf_tokens_are_per_identity() {
        let gate = gate();
        let token = gate.csrf("token 1");
        assert!(gate.csrf_ok("token 1", &token));
        assert!(!gate.csrf_ok("token 2", &token));
        assert!(!gate.csrf_ok("token 1", ""));
    }

    #[test]
    fn cross_origin_posts_are_told_apart() {
        let host = ("host", "127.0.0.1:3000");
        assert!(same_origin(&parts(&[host]).headers));
        assert!(same_origin(
            &parts(&[host, ("origin", "http://127.0.0.1:3000")]).headers
        ));
        assert!(!same_origin(
            &parts(&[host, ("origin", "http://evil.example")]).headers
        ));
        assert!(!same_origin(&parts(&[host, ("origin", "null")]).headers));
        assert!(!same_origin(
            &parts(&[host, ("sec-fetch-site", "cross-site")]).headers
        ));
        assert!(same_origin(
            &parts(&[host, ("sec-fetch-site", "same-origin")]).headers
        ));
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let text = format!("{:?}", gate());
        assert!(
            !text.contains("all-token") && !text.contains("pw\""),
            "{text}"
        );
    }
}
