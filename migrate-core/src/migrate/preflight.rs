//! Before anything is written: the target's modules and function libraries, the source's
//! modules (live sources), and the RediSearch indexes recreated on the target: on every
//! master of a cluster target, where the "already exists" checks are made too
//! ([`index_steps`]). With a coordinator the first `FT.CREATE` creates it on every shard
//! (the others answer that it exists); RediSearch without one (Redis Stack 7.4's module)
//! routes the index name by its slot, answering `MOVED` on the other masters: the index
//! then lives on that slot's master only and indexes its keys only, which the report's
//! search problems say.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use resp_codec::Frame;

use super::conn::{self, Stream};
use super::report::Report;
use super::search;
use super::{Conflict, ErrorPolicy, MigrationError, Source, TargetConfig};
use crate::Target;

/// What the full sync needs from the preflight.
pub(crate) struct Preflight {
    pub(crate) target_modules: Option<Arc<[String]>>,
    pub(crate) existing_functions: Option<Arc<HashSet<Bytes>>>,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `masters`: every master of a cluster target (empty for a standalone one), where the
/// search indexes are created.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    source: &Source,
    target: &mut Target<Stream>,
    url: &str,
    masters: &[TargetConfig],
    conflict: Conflict,
    on_error: ErrorPolicy,
    timeout: Duration,
    report: &mut Report,
) -> Result<Preflight, MigrationError> {
    let terr = |source| MigrationError::Target {
        url: url.to_string(),
        source: Box::new(source),
    };
    let target_modules = target.modules().await.map_err(terr)?;
    let libraries = target.function_libraries().await.map_err(terr)?;
    if conflict == Conflict::Refuse && !libraries.is_empty() {
        return Err(MigrationError::TargetHasDefinitions {
            url: url.to_string(),
            what: "function libraries",
            names: libraries.iter().map(|l| text(l)).collect(),
        });
    }
    let existing_functions =
        (conflict == Conflict::Skip).then(|| Arc::new(libraries.into_iter().collect()));
    // An RDB file's module types are read before anything is written only when a missing
    // module stops the import; otherwise the import notes them as it goes (one pass over
    // the file instead of two) and the report names the missing modules at its end. A
    // file of RDB 1-7 (no module values then) costs the scan its first read only. One
    // pass for both was measured and not kept: holding the file in memory to read it once
    // costs more (page faults of fresh memory) than a second read from the page cache, and
    // nothing may be written before the last key header was seen.
    if let (Source::RdbFile(path), Some(loaded), ErrorPolicy::Stop) =
        (source, &target_modules, on_error)
    {
        let missing = file_modules_missing(path, loaded).await?;
        if !missing.is_empty() {
            return Err(MigrationError::ModulesMissing {
                url: url.to_string(),
                modules: missing,
            });
        }
    }
    if let Source::Live(cfg) = source {
        let probe = TargetConfig::of_source(cfg);
        match conn::connect(&probe, timeout).await {
            Ok(mut src) => {
                live_source(
                    &mut src,
                    target,
                    url,
                    masters,
                    timeout,
                    &target_modules,
                    conflict,
                    on_error,
                    report,
                )
                .await?
            }
            // The replication link reports an unreachable source itself, in one line.
            Err(MigrationError::Target { source, .. }) if source.is_connection_error() => {}
            Err(e) => {
                let why = match &e {
                    MigrationError::Target { source, .. } => source.to_string(),
                    other => other.to_string(),
                };
                tracing::warn!(
                    target: "migrate",
                    "could not read the source's modules on an ordinary connection ({why}); module values are checked key by key"
                )
            }
        }
    }
    Ok(Preflight {
        target_modules: target_modules.map(Arc::from),
        existing_functions,
    })
}

#[allow(clippy::too_many_arguments)]
async fn live_source(
    src: &mut Target<Stream>,
    target: &mut Target<Stream>,
    url: &str,
    masters: &[TargetConfig],
    timeout: Duration,
    target_modules: &Option<Vec<String>>,
    conflict: Conflict,
    on_error: ErrorPolicy,
    report: &mut Report,
) -> Result<(), MigrationError> {
    let Ok(Some(source_modules)) = src.modules().await else {
        return Ok(());
    };
    let Some(loaded) = target_modules else {
        return Ok(());
    };
    let missing: Vec<String> = source_modules
        .iter()
        .filter(|m| !crate::module_loaded(loaded, m))
        .cloned()
        .collect();
    if !missing.is_empty() {
        if on_error == ErrorPolicy::Stop {
            return Err(MigrationError::ModulesMissing {
                url: url.to_string(),
                modules: missing,
            });
        }
        tracing::warn!(target: "migrate", "the target lacks the source's modules {}: their keys are counted as unsupported", missing.join(", "));
        report.modules_missing = missing;
    }
    if crate::module_loaded(&source_modules, "search") && crate::module_loaded(loaded, "search") {
        // A cluster: on every master (the URL's node may be a replica).
        let mut owned = Vec::with_capacity(masters.len());
        for m in masters {
            owned.push((m.url.to_string(), conn::connect(m, timeout).await?));
        }
        let mut targets: Vec<(String, &mut Target<Stream>)> = if owned.is_empty() {
            vec![(url.to_string(), target)]
        } else {
            owned.iter_mut().map(|(u, t)| (u.clone(), t)).collect()
        };
        recreate_indexes(src, &mut targets, conflict, report).await?;
    }
    Ok(())
}

/// The module types whose values an RDB file holds, read with the zero-copy visitor before
/// anything is written: only the key headers are looked at (values are skipped by their
/// lengths, not decoded), and the CRC is left to the import itself.
#[derive(Default)]
struct ModuleTypes(std::collections::BTreeSet<String>);

impl rdb_parser::Visitor for ModuleTypes {
    fn key_start(&mut self, key: &rdb_parser::KeyRef<'_>) -> std::ops::ControlFlow<()> {
        if let Some(m) = key.module {
            if !self.0.contains(&m.name) {
                self.0.insert(m.name.clone());
            }
        }
        std::ops::ControlFlow::Continue(())
    }

    /// Only the key headers matter: values are not decoded.
    fn wants_items(&mut self, _value_len: u64) -> bool {
        false
    }
}

/// Reads of the module scan: big, straight into the decoder's buffer.
const SCAN_READ: usize = 1 << 20;

/// Whether the start of an RDB file (at least its 9-byte header) shows a version that has
/// no module values: `REDIS0001` to `REDIS0007` (module types came with RDB 8, Redis 4.0).
fn header_has_no_modules(head: &[u8]) -> bool {
    match head.get(..9) {
        Some([b'R', b'E', b'D', b'I', b'S', digits @ ..]) => {
            digits.iter().all(u8::is_ascii_digit)
                && digits
                    .iter()
                    .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'))
                    < 8
        }
        _ => false,
    }
}

/// The module types of the RDB stream `file` holds (one pass, no second buffer; only the
/// first read for a file of an RDB version without module values).
fn scan_module_types(
    mut file: impl std::io::Read,
) -> Result<std::collections::BTreeSet<String>, rdb_parser::Error> {
    let mut types = ModuleTypes::default();
    // The import checks the CRC as it writes; this pass only needs the key headers.
    let mut dec =
        rdb_parser::RdbDecoder::new(rdb_parser::Options::default().verify_checksum(false));
    let mut buf = bytes::BytesMut::with_capacity(SCAN_READ);
    let mut first = true;
    loop {
        if std::mem::take(&mut first) {
            super::run::read_append(&mut file, &mut buf, SCAN_READ)
                .map_err(rdb_parser::Error::Io)?;
            if header_has_no_modules(&buf) {
                // No server of that version wrote a module value (a file with one anyway
                // is no server's: the import stops at that key, as at any it cannot carry).
                return Ok(types.0);
            }
        }
        // The visitor never stops the decoder.
        let _ = dec.decode_into(&mut buf, &mut types)?;
        if dec.is_done() {
            return Ok(types.0);
        }
        let n = super::run::read_append(&mut file, &mut buf, SCAN_READ)
            .map_err(rdb_parser::Error::Io)?;
        if n == 0 {
            dec.finish()?;
            return Ok(types.0);
        }
    }
}

/// The modules an RDB file's values need that the target lacks (by name; a type the table
/// does not know is named by its type when the target has no module at all).
pub(crate) async fn file_modules_missing(
    path: &std::path::Path,
    loaded: &[String],
) -> Result<Vec<String>, MigrationError> {
    let file_err = |e: std::io::Error| MigrationError::File {
        path: path.to_path_buf(),
        source: Arc::new(e),
    };
    let file = std::fs::File::open(path).map_err(file_err)?;
    let shown = path.display().to_string();
    let types = tokio::task::spawn_blocking(move || scan_module_types(file))
        .await
        .map_err(|e| MigrationError::Internal(e.to_string()))?
        .map_err(|e| MigrationError::Rdb {
            origin: shown,
            source: Arc::new(e),
        })?;
    Ok(modules_missing(&types, loaded))
}

/// The modules that the module types `types` need and `loaded` (the target's modules)
/// lacks, by name (a type the table does not know is named by its type when the target has
/// no module at all).
pub(crate) fn modules_missing(
    types: &std::collections::BTreeSet<String>,
    loaded: &[String],
) -> Vec<String> {
    let mut missing: Vec<String> = Vec::new();
    for t in types {
        let name = match crate::provides_type(loaded, t) {
            Some(false) => crate::module_for_type(t).map(str::to_string),
            None if loaded.is_empty() => Some(format!("the module of type {t}")),
            _ => None,
        };
        if let Some(n) = name.filter(|n| !missing.contains(n)) {
            missing.push(n);
        }
    }
    missing
}

fn names(reply: &Frame) -> Vec<Bytes> {
    reply
        .as_slice()
        .unwrap_or_default()
        .iter()
        .filter_map(|f| f.as_bytes().map(Bytes::copy_from_slice))
        .collect()
}

/// What becomes of one source index on one target node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IndexStep {
    /// `FT.CREATE`.
    Create,
    /// The node has one of that name: `FT.DROPINDEX`, then `FT.CREATE`.
    Replace,
    /// The node has one of that name: kept ([`Conflict::Skip`]).
    Keep,
}

/// Per target node (the order of `existing`, each node's `FT._LIST`), per source index
/// (the order of `indexes`): its step. Under [`Conflict::Refuse`], the indexes some node
/// has already, each with the first such node's position, instead.
pub(crate) fn index_steps(
    indexes: &[Bytes],
    existing: &[HashSet<Bytes>],
    conflict: Conflict,
) -> Result<Vec<Vec<IndexStep>>, Vec<(usize, Bytes)>> {
    let clash: Vec<(usize, Bytes)> = indexes
        .iter()
        .filter_map(|i| {
            existing
                .iter()
                .position(|e| e.contains(i))
                .map(|n| (n, i.clone()))
        })
        .collect();
    if conflict == Conflict::Refuse && !clash.is_empty() {
        return Err(clash);
    }
    Ok(existing
        .iter()
        .map(|e| {
            indexes
                .iter()
                .map(|i| match (e.contains(i), conflict) {
                    (false, _) => IndexStep::Create,
                    (true, Conflict::Skip) => IndexStep::Keep,
                    (true, _) => IndexStep::Replace,
                })
                .collect()
        })
        .collect())
}

/// `FT._LIST` + `FT.INFO` + `FT.SYNDUMP` on the source, then on each target node (every
/// master of a cluster) `FT.CREATE` + `FT.SYNUPDATE` and its `FT.INFO` compared with the
/// source's. `targets`: each node's URL (redacted) and connection.
async fn recreate_indexes(
    src: &mut Target<Stream>,
    targets: &mut [(String, &mut Target<Stream>)],
    conflict: Conflict,
    report: &mut Report,
) -> Result<(), MigrationError> {
    let terr = |url: &str, source| MigrationError::Target {
        url: url.to_string(),
        source: Box::new(source),
    };
    let Ok(list) = src.call(&["FT._LIST"]).await else {
        return Ok(());
    };
    let indexes = names(&list);
    if indexes.is_empty() {
        return Ok(());
    }
    let mut existing = Vec::with_capacity(targets.len());
    for (url, t) in targets.iter_mut() {
        let list = t.call(&["FT._LIST"]).await.map_err(|e| terr(url, e))?;
        existing.push(names(&list).into_iter().collect::<HashSet<Bytes>>());
    }
    let steps = match index_steps(&indexes, &existing, conflict) {
        Ok(s) => s,
        Err(clash) => {
            return Err(MigrationError::TargetHasDefinitions {
                url: targets[clash[0].0].0.clone(),
                what: "search indexes",
                names: clash.iter().map(|(_, i)| text(i)).collect(),
            })
        }
    };
    let several = targets.len() > 1;
    for (n, name) in indexes.iter().enumerate() {
        let shown = text(name);
        let problem = |report: &mut Report, why: String| {
            tracing::warn!(target: "migrate", "search index {shown}: {why}");
            report.search_index_problems.push(format!("{shown}: {why}"));
        };
        let info = match src.call(&[&b"FT.INFO"[..], name]).await {
            Ok(f) if !f.is_error() => f,
            Ok(f) => {
                problem(report, format!("FT.INFO on the source failed: {f:?}"));
                continue;
            }
            Err(e) => {
                problem(report, format!("FT.INFO on the source failed: {e}"));
                continue;
            }
        };
        let syndump = src
            .call(&[&b"FT.SYNDUMP"[..], name])
            .await
            .ok()
            .filter(|f| !f.is_error());
        let plan = match search::plan(&info, syndump.as_ref()) {
            Ok(p) => p,
            Err(why) => {
                problem(report, format!("not recreated: {why}"));
                continue;
            }
        };
        let mut created_everywhere = true;
        // Cluster masters that answered `MOVED` (RediSearch without a coordinator routes
        // the index name by its slot), the node that created it first.
        let mut elsewhere = 0usize;
        let mut first: Option<String> = None;
        for (node, (url, target)) in targets.iter_mut().enumerate() {
            // On a cluster, each problem names its master.
            let on = if several {
                format!(" (on {url})")
            } else {
                String::new()
            };
            match steps[node][n] {
                IndexStep::Keep => {
                    problem(report, format!("exists on the target already: kept{on}"));
                    created_everywhere = false;
                    continue;
                }
                IndexStep::Replace => {
                    target
                        .call(&[&b"FT.DROPINDEX"[..], name])
                        .await
                        .map_err(|e| terr(url, e))?;
                }
                IndexStep::Create => {}
            }
            let reply = target.call(&plan.create).await.map_err(|e| terr(url, e))?;
            let error = crate::ServerError::from_frame(&reply);
            if several && error.as_ref().is_some_and(|e| e.redirect().is_some()) {
                elsewhere += 1;
                continue;
            }
            let exists = error.as_ref().is_some_and(|e| {
                e.to_string()
                    .to_ascii_lowercase()
                    .contains("already exists")
            });
            if exists && first.is_some() {
                // A coordinator created it on every shard with the first `FT.CREATE`.
                continue;
            }
            if reply.is_error() {
                problem(
                    report,
                    format!(
                        "FT.CREATE refused by the target{on}: {}",
                        error_text(&reply)
                    ),
                );
                created_everywhere = false;
                continue;
            }
            for syn in &plan.synonyms {
                let reply = target.call(syn).await.map_err(|e| terr(url, e))?;
                if reply.is_error() {
                    problem(
                        report,
                        format!("FT.SYNUPDATE refused{on}: {}", error_text(&reply)),
                    );
                }
            }
            let created = target
                .call(&[&b"FT.INFO"[..], name])
                .await
                .map_err(|e| terr(url, e))?;
            let (want, got) = (search::definition(&info), search::definition(&created));
            let differ: Vec<String> = want
                .iter()
                .filter(|w| !got.contains(w))
                .map(|(field, _)| text(field))
                .collect();
            if !differ.is_empty() {
                problem(
                    report,
                    format!(
                        "recreated{on}, but its {} differ from the source's",
                        differ.join(", ")
                    ),
                );
            }
            first.get_or_insert_with(|| url.clone());
        }
        match (&first, elsewhere) {
            (Some(owner), n) if n > 0 => problem(
                report,
                format!(
                    "the target's RediSearch has no cluster coordinator: the index lives on the master of its name's slot ({owner}) and indexes that master's keys only; the keys of the {n} other master(s) are not indexed"
                ),
            ),
            (None, n) if n > 0 => {
                problem(report, "FT.CREATE redirected by every master: not created".into());
                created_everywhere = false;
            }
            _ => {}
        }
        if created_everywhere {
            tracing::info!(target: "migrate", "search index {shown} recreated on the target");
            report.search_indexes_created.push(shown.clone());
        }
    }
    Ok(())
}

fn error_text(f: &Frame) -> String {
    crate::ServerError::from_frame(f)
        .map(|e| e.to_string())
        .unwrap_or_else(|| format!("{f:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rdb_versions_before_8_have_no_module_values() {
        for (head, none) in [
            (&b"REDIS0001"[..], true),
            (b"REDIS0003\xfe\x00", true),
            (b"REDIS0007", true),
            (b"REDIS0008", false),
            (b"REDIS0011", false),
            (b"REDIS0012", false),
            (b"VALKEY080", false),
            (b"REDIS00x3", false),
            (b"REDIS000", false),
            (b"", false),
        ] {
            assert_eq!(
                header_has_no_modules(head),
                none,
                "{}",
                String::from_utf8_lossy(head)
            );
        }
        // An RDB 3 file: only its first read is looked at (what follows its header is not
        // decoded, as the garbage here shows); an RDB 9 file is read to its end.
        let rdb3 = b"REDIS0003\xfe\x00\x00\x01k\x01v\xff";
        assert!(scan_module_types(&rdb3[..]).unwrap().is_empty());
        assert!(scan_module_types(&b"REDIS0003\x55\x55\x55"[..])
            .unwrap()
            .is_empty());
        assert!(scan_module_types(&b"REDIS0009\x55\x55\x55"[..]).is_err());
        let mut rdb9 = b"REDIS0009\xfe\x00\x00\x01k\x01v\xff".to_vec();
        rdb9.extend_from_slice(&[0; 8]);
        assert!(scan_module_types(&rdb9[..]).unwrap().is_empty());
    }

    fn set(names: &[&str]) -> HashSet<Bytes> {
        names.iter().map(|n| Bytes::from(n.to_string())).collect()
    }

    #[test]
    fn index_steps_per_master() {
        use IndexStep::*;
        let indexes = vec![Bytes::from("a"), Bytes::from("b")];
        // Three masters: `b` on the second already.
        let existing = [set(&[]), set(&["b", "other"]), set(&[])];
        assert_eq!(
            index_steps(&indexes, &existing, Conflict::Replace).unwrap(),
            vec![
                vec![Create, Create],
                vec![Create, Replace],
                vec![Create, Create]
            ]
        );
        assert_eq!(
            index_steps(&indexes, &existing, Conflict::Skip).unwrap(),
            vec![
                vec![Create, Create],
                vec![Create, Keep],
                vec![Create, Create]
            ]
        );
        // Refused, naming the master that has it.
        assert_eq!(
            index_steps(&indexes, &existing, Conflict::Refuse).unwrap_err(),
            vec![(1, Bytes::from("b"))]
        );
        // No clash: created on every master under Refuse too.
        let empty = [set(&[]), set(&["other"])];
        assert_eq!(
            index_steps(&indexes, &empty, Conflict::Refuse).unwrap(),
            vec![vec![Create, Create], vec![Create, Create]]
        );
        // A standalone target: one node.
        assert_eq!(
            index_steps(&indexes, &[set(&["a"])], Conflict::Replace).unwrap(),
            vec![vec![Replace, Create]]
        );
    }
}
