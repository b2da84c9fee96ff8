//! The escalation dossier as the CLI offers it: the records are loaded here, the attachments
//! analysed, and the document itself is built by `casework::dossier` (the one place the web
//! app uses too).

use incidents::Store;
use runbook::RunbookSet;

pub async fn render(store: &Store, set: &RunbookSet, id: i64) -> anyhow::Result<String> {
    Ok(casework::dossier::markdown(set, &load(store, id).await?))
}

/// The incident's records, each attachment with its analysis when it is a capture or a client
/// log dialtone reads.
pub async fn load(store: &Store, id: i64) -> anyhow::Result<casework::dossier::Dossier> {
    let incident = store.get(id).await?;
    let mut attachments = Vec::new();
    for a in store.attachments(id).await? {
        let (_, bytes) = store.attachment(a.id).await?;
        let account = incident.account.clone();
        let section = tokio::task::spawn_blocking(move || section(&bytes, &account))
            .await
            .ok()
            .flatten();
        attachments.push((a, section));
    }
    Ok(casework::dossier::Dossier {
        steps: store.steps(id).await?,
        escalations: store.escalations(id).await?,
        notes: store.notes(id).await?,
        audit: store.audit(id).await?,
        attachments,
        incident,
    })
}

/// The Markdown section of a capture or client log for `account`, or `None` when the bytes are
/// neither.
pub fn section(bytes: &[u8], account: &str) -> Option<String> {
    match captures::analyze_for_user(|| Ok(std::io::Cursor::new(bytes)), account) {
        Ok(an) if an.stats.sip_messages > 0 => Some(captures::markdown_section(&an)),
        _ => None,
    }
}
