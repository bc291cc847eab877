//! Named reports: definitions an operator keeps in a folder of TOML files
//! (`reports.dir`), each a parameterised query against a configured data
//! source. A client sends `{"report", "params"}`; the parameters are checked
//! at submit and stored with the job as a `ReportQuery` in its payload's
//! header, and the worker runs the query and renders what it returns.
mod definition;
mod params;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use definition::{ColumnSpec, DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT, DefinitionError, ReportDefinition, parse_definition};
pub use params::{MAX_TEXT_CHARS, ParamSpec, ParamType, ParamValue};

use super::cell::{Column, ColumnType};
use super::payload::PayloadHeader;
use super::validate::{NamedRequest, Submission, ValidationError};

/// What a named report's job runs: the report, and its checked parameters as
/// JSON (bound again when the job runs, so a retry binds the same values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportQuery {
    pub report: String,
    pub params: Map<String, Value>,
}

/// A definition file that stopped the start.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("reports.dir {dir}: {error}")]
    Dir { dir: PathBuf, error: std::io::Error },
    #[error("{file}: {error}")]
    File { file: PathBuf, error: String },
    #[error("{file}: {error}")]
    Definition { file: PathBuf, error: DefinitionError },
}

/// Every named report this process knows, by name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    reports: BTreeMap<String, Arc<ReportDefinition>>,
}

impl Catalog {
    /// Loads every `*.toml` in `dir` (none when it does not exist). A file
    /// that does not parse, a bad field, an unknown source or a name used
    /// twice is an error naming the file and the field.
    pub fn load(dir: &Path, sources: &[&str]) -> Result<Catalog, CatalogError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Catalog::default()),
            Err(error) => return Err(CatalogError::Dir { dir: dir.to_path_buf(), error }),
        };
        let mut files: Vec<PathBuf> = entries
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| CatalogError::Dir { dir: dir.to_path_buf(), error })?
            .into_iter()
            .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
            .collect();
        files.sort();
        let mut catalog = Catalog::default();
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|e| CatalogError::File { file: file.clone(), error: e.to_string() })?;
            let definition = parse_definition(&text, sources).map_err(|error| CatalogError::Definition { file: file.clone(), error })?;
            if catalog.reports.contains_key(&definition.name) {
                let error = DefinitionError { field: "name".into(), message: format!("\"{}\" is defined by another file too", definition.name) };
                return Err(CatalogError::Definition { file, error });
            }
            catalog.reports.insert(definition.name.clone(), Arc::new(definition));
        }
        Ok(catalog)
    }

    /// A catalog of the given definitions (tests).
    #[cfg(test)]
    pub(crate) fn of(definitions: impl IntoIterator<Item = ReportDefinition>) -> Catalog {
        Catalog { reports: definitions.into_iter().map(|d| (d.name.clone(), Arc::new(d))).collect() }
    }

    pub fn is_empty(&self) -> bool {
        self.reports.is_empty()
    }

    pub fn len(&self) -> usize {
        self.reports.len()
    }

    pub fn get(&self, name: &str) -> Option<&Arc<ReportDefinition>> {
        self.reports.get(name)
    }

    /// The reports a caller may run, by name: every one for an operator.
    pub fn visible<'a>(&'a self, tenant: &'a str, operator: bool) -> impl Iterator<Item = &'a ReportDefinition> + 'a {
        self.reports.values().map(Arc::as_ref).filter(move |d| operator || d.allows(tenant))
    }

    /// The submission of a named report: its parameters checked (`422` naming
    /// `params.<name>`), its format and title settled. A report the caller's
    /// tenant may not run is refused as unknown, so its existence is not told.
    pub fn resolve(&self, request: NamedRequest, tenant: &str, operator: bool) -> Result<Submission, ValidationError> {
        let definition = self
            .get(&request.report)
            .filter(|d| operator || d.allows(tenant))
            .ok_or_else(|| ValidationError::field("report", format!("unknown report \"{}\"", request.report)))?;
        let values = bind(definition, &request.params)?;
        let params = definition.params.iter().zip(&values).map(|(p, v)| (p.name.clone(), v.to_json())).collect();
        let header = PayloadHeader {
            format: request.format.unwrap_or(definition.format),
            title: request.title.unwrap_or_else(|| definition.title.clone()),
            sheets: Vec::new(),
            query: Some(ReportQuery { report: definition.name.clone(), params }),
        };
        Ok(Submission { header, callback_url: request.callback_url })
    }
}

/// The values to bind, in the definition's order, for the parameters a client
/// sent: each checked against its type and bounds; unknown names refused.
pub fn bind(definition: &ReportDefinition, sent: &Map<String, Value>) -> Result<Vec<ParamValue>, ValidationError> {
    if let Some(unknown) = sent.keys().find(|k| !definition.params.iter().any(|p| &p.name == *k)) {
        let known: Vec<&str> = definition.params.iter().map(|p| p.name.as_str()).collect();
        let known = if known.is_empty() { "it takes none".to_string() } else { format!("it takes {}", known.join(", ")) };
        return Err(ValidationError::field(
            format!("params.{unknown}"),
            format!("report \"{}\" has no parameter \"{unknown}\" ({known})", definition.name),
        ));
    }
    definition
        .params
        .iter()
        .map(|p| p.check(sent.get(&p.name)).map_err(|m| ValidationError::field(format!("params.{}", p.name), format!("params.{}: {m}", p.name))))
        .collect()
}

/// The report's columns: the query's names and types, with the definition's
/// titles and formats by position when it lists them.
pub fn columns(definition: &ReportDefinition, query: Vec<(String, ColumnType)>) -> Result<Vec<Column>, ColumnMismatch> {
    if !definition.columns.is_empty() && definition.columns.len() != query.len() {
        return Err(ColumnMismatch { defined: definition.columns.len(), returned: query.len() });
    }
    Ok(query
        .into_iter()
        .enumerate()
        .map(|(i, (name, kind))| match definition.columns.get(i) {
            Some(spec) => Column { name: spec.name.clone(), kind, format: spec.format.clone() },
            None => Column { name, kind, format: None },
        })
        .collect())
}

/// The definition lists a number of columns the query does not return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMismatch {
    pub defined: usize,
    pub returned: usize,
}

impl fmt::Display for ColumnMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the definition lists {} columns but the query returns {}", self.defined, self.returned)
    }
}

#[cfg(test)]
mod tests;
