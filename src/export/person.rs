//! A data subject access request: everything stored about one mail address, as one JSON
//! document (`data.json`) and the raw mails (`mails/<id>.eml`), in an owner-only folder.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::store::person::PersonMessage;
use crate::store::{CaseDetail, create_private_dir};

#[derive(Debug, Serialize)]
pub struct PersonData<'a> {
    pub address: &'a str,
    pub exported_at: String,
    /// The cases where the address is the complainant, with their fields and history.
    pub cases: &'a [CaseDetail],
    /// Every message from or to the address (full text; raw files alongside).
    pub messages: Vec<MessageOut<'a>>,
}

#[derive(Debug, Serialize)]
pub struct MessageOut<'a> {
    #[serde(flatten)]
    pub message: &'a PersonMessage,
    /// The raw mail, relative to the export folder.
    pub raw_file: String,
}

/// Write the export to `dir` (created owner-only). Returns the paths written.
pub fn write(
    dir: &Path,
    address: &str,
    exported_at: String,
    cases: &[CaseDetail],
    messages: &[PersonMessage],
) -> std::io::Result<Vec<PathBuf>> {
    create_private_dir(&dir.join("mails"))?;
    let mut written = Vec::new();
    let mut out = Vec::new();
    for m in messages {
        let rel = format!("mails/{:06}.eml", m.id);
        let path = dir.join(&rel);
        write_private(&path, &m.raw)?;
        written.push(path);
        out.push(MessageOut {
            message: m,
            raw_file: rel,
        });
    }
    let data = PersonData {
        address,
        exported_at,
        cases,
        messages: out,
    };
    let json = serde_json::to_vec_pretty(&data).map_err(std::io::Error::other)?;
    let path = dir.join("data.json");
    write_private(&path, &json)?;
    written.insert(0, path);
    Ok(written)
}

/// Write a file readable by the owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)?.write_all(bytes)
}
