//! Why full syncs keep failing: what the source's `INFO` and `CONFIG` say, turned into one
//! sentence a person can act on. Pure (the driver fetches the facts), so it is unit-tested.

use crate::error::{Error, Phase};

/// What a separate, ordinary connection to the source could read after full syncs failed.
#[derive(Debug, Default, Clone)]
pub(crate) struct SourceFacts {
    /// The text of `INFO` (all default sections), when it could be read.
    pub(crate) info: Option<String>,
    /// `CONFIG GET` answers that could be read (name, value).
    pub(crate) config: Vec<(String, String)>,
    /// Why `INFO` could not be read, if it could not.
    pub(crate) probe_error: Option<String>,
}

impl SourceFacts {
    fn info_field(&self, name: &str) -> Option<&str> {
        self.info
            .as_deref()?
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.trim())
    }

    fn config(&self, name: &str) -> Option<&str> {
        self.config
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `client-output-buffer-limit` for the replica class: `hard soft seconds`.
    fn replica_buffer_limit(&self) -> Option<String> {
        let v = self.config("client-output-buffer-limit")?;
        let words: Vec<&str> = v.split_whitespace().collect();
        let at = words
            .iter()
            .position(|w| *w == "slave" || *w == "replica")?;
        let limits = words.get(at + 1..at + 4)?;
        Some(limits.join(" "))
    }

    /// The Valkey major version, when the source is Valkey.
    fn valkey_major(&self) -> Option<u32> {
        let v = self.info_field("valkey_version").or_else(|| {
            (self.info_field("server_name") == Some("valkey"))
                .then(|| self.info_field("redis_version"))
                .flatten()
        })?;
        v.split('.').next()?.parse().ok()
    }
}

/// The likely cause of repeated full-sync failures, and where to look.
pub(crate) fn diagnose(facts: &SourceFacts, announced: Option<&str>, last: &Error) -> String {
    let mut causes = Vec::new();
    let phase = match last {
        Error::Closed { phase } | Error::Io { phase, .. } | Error::Timeout { phase, .. } => {
            Some(*phase)
        }
        _ => None,
    };
    if facts.valkey_major().is_some_and(|m| m >= 9) && announced.is_none() {
        causes.push(
            "the source is Valkey 9+, which sends RDB 11 to a replica that announces no \
             version, and its snapshot fails on values RDB 11 cannot hold (hash field TTLs): \
             announce a version (REPLCONF version; SessionConfig::replconf_version)"
                .to_string(),
        );
    }
    if facts.info_field("rdb_last_bgsave_status") == Some("err") {
        causes.push(
            "the source's last snapshot failed (INFO persistence rdb_last_bgsave_status:err): \
             a full disk or a refused fork (vm.overcommit_memory, memory)"
                .to_string(),
        );
    }
    let cut = facts
        .info_field("client_output_buffer_limit_disconnections")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let limit = facts.replica_buffer_limit();
    if cut > 0 || phase == Some(Phase::Rdb) {
        let limit = limit.as_deref().map_or(String::new(), |l| {
            format!(" (now {l}: hard, soft bytes, seconds)")
        });
        let seen = if cut > 0 {
            format!("the source disconnected {cut} client(s) for their output-buffer limit; ")
        } else {
            "the link broke during the RDB transfer; ".to_string()
        };
        causes.push(format!(
            "{seen}a replica that reads slower than `client-output-buffer-limit replica`{limit} \
             allows is cut: raise it, or spool the RDB to disk (RdbSpool::ToDir) so it is read \
             at network speed"
        ));
    }
    if causes.is_empty() && phase == Some(Phase::RdbWait) {
        causes.push(
            "the source closed the link before sending any RDB byte, so its snapshot failed \
             (its log says why: \"Can't store key\", \"Background RDB transfer error\", \
             \"Can't save in background: fork\")"
                .to_string(),
        );
    }
    let mut text = if causes.is_empty() {
        "likely cause unknown".to_string()
    } else {
        format!("likely cause: {}", causes.join("; also "))
    };
    if let Some(e) = &facts.probe_error {
        text.push_str(&format!(" (the source's INFO could not be read: {e})"));
    }
    let diskless = facts
        .config("repl-diskless-sync")
        .map_or(String::new(), |v| format!(" (now {v})"));
    text.push_str(&format!(
        ". Look at the source's log, INFO persistence (rdb_last_bgsave_status), \
         CONFIG GET client-output-buffer-limit (replica class) and repl-diskless-sync{diskless}"
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(info: &str, config: &[(&str, &str)]) -> SourceFacts {
        SourceFacts {
            info: Some(info.to_string()),
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            probe_error: None,
        }
    }

    const LIMIT: (&str, &str) = (
        "client-output-buffer-limit",
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
    );

    #[test]
    fn valkey_9_without_version() {
        let f = facts("# Server\r\nvalkey_version:9.1.2\r\n", &[LIMIT]);
        let last = Error::Closed {
            phase: Phase::RdbWait,
        };
        let d = diagnose(&f, None, &last);
        assert!(d.contains("Valkey 9+"), "{d}");
        assert!(d.contains("Look at the source's log"), "{d}");
        // Announcing a version removes that cause; the RDB-wait close remains.
        let d = diagnose(&f, Some("9.1.2"), &last);
        assert!(
            !d.contains("Valkey 9+") && d.contains("snapshot failed"),
            "{d}"
        );
    }

    #[test]
    fn output_buffer_limit() {
        let f = facts(
            "redis_version:7.0.15\r\nclient_output_buffer_limit_disconnections:3\r\n",
            &[LIMIT, ("repl-diskless-sync", "yes")],
        );
        let d = diagnose(&f, Some("9.1.2"), &Error::Closed { phase: Phase::Rdb });
        assert!(d.contains("disconnected 3 client(s)"), "{d}");
        assert!(d.contains("now 268435456 67108864 60"), "{d}");
        assert!(d.contains("repl-diskless-sync (now yes)"), "{d}");
    }

    #[test]
    fn failed_bgsave_and_unreadable_info() {
        let f = facts("rdb_last_bgsave_status:err\r\n", &[]);
        let d = diagnose(
            &f,
            None,
            &Error::Closed {
                phase: Phase::RdbWait,
            },
        );
        assert!(d.contains("rdb_last_bgsave_status:err"), "{d}");
        let f = SourceFacts {
            probe_error: Some("NOPERM".into()),
            ..SourceFacts::default()
        };
        let d = diagnose(
            &f,
            None,
            &Error::Closed {
                phase: Phase::RdbWait,
            },
        );
        assert!(
            d.contains("snapshot failed") && d.contains("could not be read: NOPERM"),
            "{d}"
        );
    }
}
