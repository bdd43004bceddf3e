//! How deploy generates a secret's value, written as the one line that is both
//! `SecretAttrs::value` and the `deploy:generated` tag. Every parameter that shapes the value
//! (format, length, user name, certificate names, validity, rotation) is in the line, so
//! changing any of them shows as `~ value: (sensitive) -> (sensitive)` and a new value is
//! generated; the adapter reads the line back to know what to generate.
//!
//! Kept apart from `model.rs` so the formats stay one self-contained addition; nothing here
//! knows about the AWS SDK or holds a value.

/// What kind of value a generated secret holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretFormat {
    /// A random password (GetRandomPassword), the secret string itself.
    Password,
    /// JSON `{"username", "password", "bcrypt"}`: a random password and its bcrypt hash (what
    /// Prometheus's web config wants for its `basic_auth_users`).
    BasicAuth { username: String },
    /// JSON `{"cert", "key"}` (PEM): a self-signed server certificate for `names`, valid for
    /// `validity_days` from its generation.
    Tls {
        names: Vec<String>,
        validity_days: i64,
    },
}

/// A generation line, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generation {
    pub format: SecretFormat,
    /// Length of the random password (password and basic_auth only).
    pub length: i64,
    /// Letters and digits only (password and basic_auth only).
    pub exclude_punctuation: bool,
    pub rotation: i64,
}

/// Tag values take at most this many characters.
pub const MAX_GENERATION_LEN: usize = 256;

/// How long a generated password may be (GetRandomPassword takes up to 4096).
pub const PASSWORD_LENGTHS: std::ops::RangeInclusive<i64> = 8..=4096;

/// How many days a generated certificate may be valid (ten years at most, so the date
/// arithmetic can never overflow).
pub const VALIDITY_DAYS: std::ops::RangeInclusive<i64> = 1..=3650;

/// The characters a tag value may hold on every AWS tagging API.
pub fn tag_safe(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || " +-=._:/@".contains(c))
}

impl Generation {
    /// The line: `length=32 punctuation=no rotation=0` for a password (the form secrets
    /// generated before formats existed carry, so they are not regenerated),
    /// `format=basic_auth username=U length=… punctuation=… rotation=…`,
    /// `format=tls names=A+B days=825 rotation=…` (names joined by `+`, which no DNS name
    /// or IP address contains).
    pub fn encode(&self) -> String {
        let password = |len: i64, excl: bool| {
            format!(
                "length={len} punctuation={}",
                if excl { "no" } else { "yes" }
            )
        };
        let r = self.rotation;
        match &self.format {
            SecretFormat::Password => format!(
                "{} rotation={r}",
                password(self.length, self.exclude_punctuation)
            ),
            SecretFormat::BasicAuth { username } => format!(
                "format=basic_auth username={username} {} rotation={r}",
                password(self.length, self.exclude_punctuation)
            ),
            SecretFormat::Tls {
                names,
                validity_days,
            } => format!(
                "format=tls names={} days={validity_days} rotation={r}",
                names.join("+")
            ),
        }
    }

    /// Reads a line that must be one this deploy writes, within the limits `validate` enforces
    /// on the stack (a saved plan's lines come from a file): why not, when it is not.
    pub fn parse_checked(line: &str) -> Result<Generation, String> {
        let g = Generation::parse(line).ok_or("it is not a generation line")?;
        if g.encode() != line {
            return Err("it is not written the way deploy writes one".into());
        }
        if line.len() > MAX_GENERATION_LEN || !tag_safe(line) {
            return Err(format!(
                "it does not fit a tag ({MAX_GENERATION_LEN} characters of letters, digits \
                 and ` +-=._:/@`)"
            ));
        }
        if g.rotation < 0 {
            return Err("its rotation is negative".into());
        }
        match &g.format {
            SecretFormat::Password | SecretFormat::BasicAuth { .. } => {
                if !PASSWORD_LENGTHS.contains(&g.length) {
                    return Err(format!(
                        "its length {} is outside {}..={}",
                        g.length,
                        PASSWORD_LENGTHS.start(),
                        PASSWORD_LENGTHS.end()
                    ));
                }
            }
            SecretFormat::Tls {
                names,
                validity_days,
            } => {
                if !VALIDITY_DAYS.contains(validity_days) {
                    return Err(format!(
                        "its validity of {validity_days} days is outside {}..={}",
                        VALIDITY_DAYS.start(),
                        VALIDITY_DAYS.end()
                    ));
                }
                if names.iter().any(String::is_empty) {
                    return Err("it names an empty host name".into());
                }
            }
        }
        if let SecretFormat::BasicAuth { username } = &g.format {
            if username.is_empty() {
                return Err("its user name is empty".into());
            }
        }
        Ok(g)
    }

    /// Reads [`Generation::encode`]'s line back; `None` when it is not one.
    pub fn parse(line: &str) -> Option<Generation> {
        let mut format = "password";
        let (mut length, mut exclude, mut rotation) = (None, None, 0);
        let (mut username, mut names, mut days) = (None, None, None);
        for part in line.split(' ') {
            match part.split_once('=')? {
                ("format", f) => format = f,
                ("length", l) => length = l.parse().ok(),
                ("punctuation", p) => exclude = Some(p == "no"),
                ("rotation", r) => rotation = r.parse().ok()?,
                ("username", u) => username = Some(u.to_string()),
                ("names", n) => names = Some(n.split('+').map(str::to_string).collect()),
                ("days", d) => days = d.parse().ok(),
                _ => {}
            }
        }
        let format = match format {
            "password" => SecretFormat::Password,
            "basic_auth" => SecretFormat::BasicAuth {
                username: username?,
            },
            "tls" => {
                return Some(Generation {
                    format: SecretFormat::Tls {
                        names: names?,
                        validity_days: days?,
                    },
                    length: 0,
                    exclude_punctuation: true,
                    rotation,
                })
            }
            _ => return None,
        };
        Some(Generation {
            format,
            length: length?,
            exclude_punctuation: exclude?,
            rotation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_round_trips_and_stays_tag_safe() {
        for g in [
            Generation {
                format: SecretFormat::Password,
                length: 40,
                exclude_punctuation: false,
                rotation: 3,
            },
            Generation {
                format: SecretFormat::BasicAuth {
                    username: "grafana".into(),
                },
                length: 32,
                exclude_punctuation: true,
                rotation: 0,
            },
            Generation {
                format: SecretFormat::Tls {
                    names: vec!["prometheus.monitoring.internal".into(), "localhost".into()],
                    validity_days: 825,
                },
                length: 0,
                exclude_punctuation: true,
                rotation: 1,
            },
        ] {
            let line = g.encode();
            assert!(tag_safe(&line), "{line}");
            assert_eq!(Generation::parse(&line), Some(g), "{line}");
        }
    }

    #[test]
    fn a_password_keeps_the_line_it_had_before_formats() {
        let g = Generation {
            format: SecretFormat::Password,
            length: 32,
            exclude_punctuation: true,
            rotation: 0,
        };
        assert_eq!(g.encode(), "length=32 punctuation=no rotation=0");
        assert_eq!(Generation::parse("set outside deploy"), None);
        assert_eq!(
            Generation::parse("format=pgp length=3 punctuation=no"),
            None
        );
    }

    #[test]
    fn a_checked_line_is_within_the_stack_limits() {
        let tls = "format=tls names=a.internal days=825 rotation=0";
        assert!(Generation::parse_checked(tls).is_ok());
        // Parses, but generating it would overflow the date arithmetic.
        let far = "format=tls names=a.internal days=5000000 rotation=0";
        assert!(Generation::parse(far).is_some());
        assert!(Generation::parse_checked(far)
            .unwrap_err()
            .contains("5000000 days"));
        for bad in [
            "length=7 punctuation=no rotation=0",
            "length=5000 punctuation=no rotation=0",
            "length=32 punctuation=no rotation=-1",
            "length=32  punctuation=no rotation=0",
            "format=tls names=a..b+ days=30 rotation=0",
            "format=basic_auth username= length=32 punctuation=no rotation=0",
            "set outside deploy",
        ] {
            assert!(Generation::parse_checked(bad).is_err(), "{bad}");
        }
        assert!(Generation::parse_checked("length=32 punctuation=no rotation=0").is_ok());
    }

    #[test]
    fn a_changed_parameter_changes_the_line() {
        let tls = |names: &[&str], days| Generation {
            format: SecretFormat::Tls {
                names: names.iter().map(|n| n.to_string()).collect(),
                validity_days: days,
            },
            length: 0,
            exclude_punctuation: true,
            rotation: 0,
        };
        let base = tls(&["a.internal"], 825).encode();
        assert_ne!(base, tls(&["a.internal", "localhost"], 825).encode());
        assert_ne!(base, tls(&["a.internal"], 30).encode());
        let user = |u: &str| Generation {
            format: SecretFormat::BasicAuth { username: u.into() },
            length: 32,
            exclude_punctuation: true,
            rotation: 0,
        };
        assert_ne!(user("grafana").encode(), user("admin").encode());
    }
}
