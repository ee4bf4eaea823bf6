//! Before anything is written: the target's modules and function libraries, the source's
//! modules (live sources), and the RediSearch indexes recreated on the target.

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

pub(crate) async fn run(
    source: &Source,
    target: &mut Target<Stream>,
    url: &str,
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
    if let (Source::RdbFile(path), Some(loaded)) = (source, &target_modules) {
        let missing = file_modules_missing(path, loaded).await?;
        if !missing.is_empty() {
            if on_error == ErrorPolicy::Stop {
                return Err(MigrationError::ModulesMissing {
                    url: url.to_string(),
                    modules: missing,
                });
            }
            report.modules_missing = missing;
        }
    }
    if let Source::Live(cfg) = source {
        let probe = TargetConfig {
            url: cfg.url().clone(),
            tls: cfg.tls_options().clone(),
        };
        match conn::connect(&probe, timeout).await {
            Ok(mut src) => {
                live_source(
                    &mut src,
                    target,
                    url,
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

async fn live_source(
    src: &mut Target<Stream>,
    target: &mut Target<Stream>,
    url: &str,
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
        recreate_indexes(src, target, url, conflict, report).await?;
    }
    Ok(())
}

/// The module types whose values an RDB file holds, read with the zero-copy visitor
/// (about 1 GB/s) before anything is written.
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
    let types = tokio::task::spawn_blocking(move || {
        let mut types = ModuleTypes::default();
        let mut reader = rdb_parser::RdbReader::new(
            std::io::BufReader::with_capacity(1 << 20, file),
            rdb_parser::Options::default(),
        );
        reader.visit(&mut types).map(|_| types.0)
    })
    .await
    .map_err(|e| MigrationError::Internal(e.to_string()))?
    .map_err(|e| MigrationError::Rdb {
        origin: shown,
        source: Arc::new(e),
    })?;
    let mut missing: Vec<String> = Vec::new();
    for t in &types {
        let name = match crate::provides_type(loaded, t) {
            Some(false) => crate::module_for_type(t).map(str::to_string),
            None if loaded.is_empty() => Some(format!("the module of type {t}")),
            _ => None,
        };
        if let Some(n) = name.filter(|n| !missing.contains(n)) {
            missing.push(n);
        }
    }
    Ok(missing)
}

fn names(reply: &Frame) -> Vec<Bytes> {
    reply
        .as_slice()
        .unwrap_or_default()
        .iter()
        .filter_map(|f| f.as_bytes().map(Bytes::copy_from_slice))
        .collect()
}

/// `FT._LIST` + `FT.INFO` + `FT.SYNDUMP` on the source, `FT.CREATE` + `FT.SYNUPDATE` on the
/// target, then the target's `FT.INFO` compared with the source's.
async fn recreate_indexes(
    src: &mut Target<Stream>,
    target: &mut Target<Stream>,
    url: &str,
    conflict: Conflict,
    report: &mut Report,
) -> Result<(), MigrationError> {
    let terr = |source| MigrationError::Target {
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
    let existing: HashSet<Bytes> = names(&target.call(&["FT._LIST"]).await.map_err(terr)?)
        .into_iter()
        .collect();
    let clash: Vec<String> = indexes
        .iter()
        .filter(|i| existing.contains(*i))
        .map(|i| text(i))
        .collect();
    if conflict == Conflict::Refuse && !clash.is_empty() {
        return Err(MigrationError::TargetHasDefinitions {
            url: url.to_string(),
            what: "search indexes",
            names: clash,
        });
    }
    for name in indexes {
        let shown = text(&name);
        let problem = |report: &mut Report, why: String| {
            tracing::warn!(target: "migrate", "search index {shown}: {why}");
            report.search_index_problems.push(format!("{shown}: {why}"));
        };
        let info = match src.call(&[&b"FT.INFO"[..], &name]).await {
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
            .call(&[&b"FT.SYNDUMP"[..], &name])
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
        if existing.contains(&name) {
            if conflict == Conflict::Skip {
                problem(report, "exists on the target already: kept".into());
                continue;
            }
            target
                .call(&[&b"FT.DROPINDEX"[..], &name])
                .await
                .map_err(terr)?;
        }
        let reply = target.call(&plan.create).await.map_err(terr)?;
        if reply.is_error() {
            problem(
                report,
                format!("FT.CREATE refused by the target: {}", error_text(&reply)),
            );
            continue;
        }
        for syn in &plan.synonyms {
            let reply = target.call(syn).await.map_err(terr)?;
            if reply.is_error() {
                problem(
                    report,
                    format!("FT.SYNUPDATE refused: {}", error_text(&reply)),
                );
            }
        }
        let created = target.call(&[&b"FT.INFO"[..], &name]).await.map_err(terr)?;
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
                    "recreated, but its {} differ from the source's",
                    differ.join(", ")
                ),
            );
        }
        tracing::info!(target: "migrate", "search index {shown} recreated on the target");
        report.search_indexes_created.push(shown.clone());
    }
    Ok(())
}

fn error_text(f: &Frame) -> String {
    crate::ServerError::from_frame(f)
        .map(|e| e.to_string())
        .unwrap_or_else(|| format!("{f:?}"))
}
