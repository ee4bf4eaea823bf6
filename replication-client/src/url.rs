//! `redis://` and `rediss://` URLs, with credentials that never get printed.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// A password (or any secret): printed as `***` by `Debug` and never shown elsewhere.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    /// The secret itself: call only where it is sent to the server.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A parsed server URL: `redis://[[user]:password@]host[:port][/]` or `rediss://` for TLS.
///
/// User name and password are percent-decoded. The port defaults to 6379. `Display` and
/// `Debug` show the password as `***`.
///
/// ```
/// use replication_client::RedisUrl;
///
/// let url: RedisUrl = "rediss://repl:s%40cret@db.example.com:6380".parse().unwrap();
/// assert!(url.tls());
/// assert_eq!(url.host(), "db.example.com");
/// assert_eq!(url.port(), 6380);
/// assert_eq!(url.username(), Some("repl"));
/// assert_eq!(url.to_string(), "rediss://repl:***@db.example.com:6380");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    tls: bool,
    host: String,
    port: u16,
    username: Option<String>,
    password: Option<Secret>,
}

impl RedisUrl {
    /// Parses a URL; see the type documentation for the accepted forms.
    pub fn parse(input: &str) -> Result<RedisUrl, Error> {
        let fail = |reason| Error::InvalidUrl {
            url: redact(input),
            reason,
        };
        let (tls, rest) = if let Some(r) = strip_prefix_ci(input, "redis://") {
            (false, r)
        } else if let Some(r) = strip_prefix_ci(input, "rediss://") {
            (true, r)
        } else {
            return Err(fail("the scheme must be redis:// or rediss://"));
        };
        if rest.contains(['?', '#']) {
            return Err(fail("query strings and fragments are not supported"));
        }
        // Authority ends at the first '/' after the last '@'.
        let at = rest.rfind('@');
        let auth_end = match rest[at.map_or(0, |a| a + 1)..].find('/') {
            Some(i) => at.map_or(0, |a| a + 1) + i,
            None => rest.len(),
        };
        let (authority, path) = rest.split_at(auth_end);
        if !(path.is_empty() || path == "/") {
            return Err(fail(
                "a path (database number) is meaningless for replication: \
                 every database is replicated",
            ));
        }
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                let (u, p) = match ui.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (ui, None),
                };
                let u = percent_decode(u).ok_or_else(|| fail("bad percent-encoding in user"))?;
                let p = match p {
                    Some(p) => Some(
                        percent_decode(p)
                            .ok_or_else(|| fail("bad percent-encoding in password"))?,
                    ),
                    None => None,
                };
                match (u.is_empty(), p) {
                    (true, None) => (None, None),
                    // `redis://user@host`: Redis convention is a password without a user.
                    (false, None) => (None, Some(Secret(u))),
                    (true, Some(p)) => (None, Some(Secret(p))),
                    (false, Some(p)) => (Some(u), Some(Secret(p))),
                }
            }
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let close = v6.find(']').ok_or_else(|| fail("unclosed '[' in host"))?;
            let host = &v6[..close];
            let after = &v6[close + 1..];
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(fail("unexpected characters after ']'")),
            };
            (host, port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(fail("missing host"));
        }
        if host.contains(|c: char| c.is_whitespace() || c == '/' || c == '@') {
            return Err(fail("invalid character in host"));
        }
        let port = match port {
            None => 6379,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n != 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(fail("the port must be a number from 1 to 65535")),
            },
        };
        Ok(RedisUrl {
            tls,
            host: host.to_string(),
            port,
            username,
            password,
        })
    }

    /// `true` for `rediss://`.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// Host name or IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// ACL user name, if any.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// Password, if any.
    pub fn password(&self) -> Option<&Secret> {
        self.password.as_ref()
    }

    /// The same URL (scheme, user, password) for another server: another node of a
    /// cluster, named by its topology.
    pub fn with_host_port(&self, host: &str, port: u16) -> RedisUrl {
        RedisUrl {
            host: host.to_string(),
            port,
            ..self.clone()
        }
    }

    /// `host:port` (IPv6 in brackets), for connecting and for messages.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for RedisUrl {
    type Err = Error;
    fn from_str(s: &str) -> Result<RedisUrl, Error> {
        RedisUrl::parse(s)
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.tls { "rediss://" } else { "redis://" })?;
        match (&self.username, &self.password) {
            (Some(u), Some(_)) => write!(f, "{}:***@", percent_encode(u))?,
            (None, Some(_)) => f.write_str(":***@")?,
            _ => {}
        }
        f.write_str(&self.addr())
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({self})")
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

/// The input with everything between `://` and the last `@` replaced by `***`, for
/// error messages about a URL that did not parse.
pub(crate) fn redact(input: &str) -> String {
    let Some(scheme_end) = input.find("://") else {
        // Not even a scheme: could be anything, show nothing of it.
        return "<redacted>".to_string();
    };
    let rest = &input[scheme_end + 3..];
    match rest.rfind('@') {
        Some(at) => format!("{}***@{}", &input[..scheme_end + 3], &rest[at + 1..]),
        None => input.to_string(),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_forms() {
        let u = RedisUrl::parse("redis://localhost").unwrap();
        assert_eq!((u.host(), u.port(), u.tls()), ("localhost", 6379, false));
        assert!(u.password().is_none() && u.username().is_none());
        let u = RedisUrl::parse("REDIS://10.0.0.1:7000/").unwrap();
        assert_eq!((u.host(), u.port()), ("10.0.0.1", 7000));
        let u = RedisUrl::parse("rediss://[::1]:6380").unwrap();
        assert_eq!((u.host(), u.port(), u.tls()), ("::1", 6380, true));
        assert_eq!(u.addr(), "[::1]:6380");
        assert_eq!(u.to_string(), "rediss://[::1]:6380");
    }

    #[test]
    fn credentials_are_decoded_and_redacted() {
        let u = RedisUrl::parse("redis://:p%3Aw@h:1").unwrap();
        assert_eq!(u.password().unwrap().expose(), "p:w");
        assert_eq!(u.username(), None);
        assert_eq!(u.to_string(), "redis://:***@h:1");
        let u = RedisUrl::parse("redis://user:pa@ss@h:1").unwrap();
        assert_eq!(u.username(), Some("user"));
        assert_eq!(u.password().unwrap().expose(), "pa@ss");
        assert!(!format!("{u:?}").contains("pa@ss"));
        assert!(!format!("{u}").contains("pa@ss"));
        let u = RedisUrl::parse("redis://onlypass@h").unwrap();
        assert_eq!(u.password().unwrap().expose(), "onlypass");
        assert!(!format!("{u:?}").contains("onlypass"));
    }

    #[test]
    fn errors_never_show_the_password() {
        for bad in [
            "http://u:hunter2@h",
            "redis://u:hunter2@h:99999",
            "redis://u:hunter2@h:0",
            "redis://u:hunter2@h/3",
            "redis://u:hunter2@",
            "redis://u:hunter2%zz@h",
            "redis://u:hunter2@h?x=1",
            "redis://u:hunter2@[::1",
            "u:hunter2@h",
        ] {
            let e = RedisUrl::parse(bad).unwrap_err();
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("hunter2"), "{bad}: {shown}");
        }
    }
}
