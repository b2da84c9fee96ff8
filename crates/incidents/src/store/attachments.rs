//! Files stored with an incident, whole or streamed in chunks.

use serde_json::json;

use super::{ATTACHMENT_CHUNK, Store, check_actor, now_ms, required};
use crate::model::Attachment;
use crate::rows;
use crate::{Error, Result};

impl Store {
    /// Stores a file with the incident (the caller enforces a size limit). Does not change
    /// the incident's version: attachments only add, so they cannot conflict.
    pub async fn add_attachment(
        &self,
        id: i64,
        name: &str,
        content_type: &str,
        bytes: &[u8],
        actor: &str,
    ) -> Result<Attachment> {
        check_actor(actor)?;
        let name = check_attachment_name(name)?;
        let content_type = required("content type", content_type)?;
        let size = i64::try_from(bytes.len())
            .map_err(|_| Error::Invalid("attachment is too large".into()))?;
        let now = now_ms();
        let attachment = in_write_tx!(self, |tx| {
            require_incident!(tx, id);
            let row = sqlx::query(
                "INSERT INTO attachments \
                 (incident_id, name, content_type, size, content, actor, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 RETURNING id, incident_id, name, content_type, size, actor, created_at",
            )
            .bind(id)
            .bind(&name)
            .bind(&content_type)
            .bind(size)
            .bind(bytes)
            .bind(actor)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let attachment = rows::attachment(&row)?;
            let detail = json!({
                "attachment_id": attachment.id, "name": name,
                "content_type": content_type, "size": size,
            });
            audit!(tx, id, actor, now, "attachment", detail);
            attachment
        });
        Ok(attachment)
    }

    /// Stores a file read from `reader` with the incident, in chunks of [`ATTACHMENT_CHUNK`]
    /// bytes, so memory stays bounded whatever the file's size. More than `limit` bytes is
    /// `Error::Invalid` and stores nothing (the whole write is one transaction: a writer killed
    /// half-way leaves no partial attachment). Like [`Store::add_attachment`] otherwise; the
    /// audit row also records the content's SHA-256.
    pub async fn add_attachment_streamed<R>(
        &self,
        id: i64,
        name: &str,
        content_type: &str,
        mut reader: R,
        limit: u64,
        actor: &str,
    ) -> Result<Attachment>
    where
        R: tokio::io::AsyncRead + Unpin + Send,
    {
        use sha2::Digest as _;
        use tokio::io::AsyncReadExt as _;
        check_actor(actor)?;
        let name = check_attachment_name(name)?;
        let content_type = required("content type", content_type)?;
        let now = now_ms();
        let mut chunk = vec![0u8; ATTACHMENT_CHUNK];
        let attachment = in_write_tx!(self, |tx| {
            require_incident!(tx, id);
            let att_id: i64 = sqlx::query_scalar(
                "INSERT INTO attachments \
                 (incident_id, name, content_type, size, content, actor, created_at) \
                 VALUES ($1, $2, $3, 0, $4, $5, $6) RETURNING id",
            )
            .bind(id)
            .bind(&name)
            .bind(&content_type)
            .bind(&[] as &[u8])
            .bind(actor)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let mut size: u64 = 0;
            let mut sha = sha2::Sha256::new();
            let mut seq: i64 = 0;
            loop {
                // Fill the chunk (a reader may return short reads), so rows are full-sized.
                let mut filled = 0;
                while filled < chunk.len() {
                    let n = reader
                        .read(&mut chunk[filled..])
                        .await
                        .map_err(|e| Error::Invalid(format!("cannot read {name}: {e}")))?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                if filled == 0 {
                    break;
                }
                size += filled as u64;
                if size > limit {
                    return Err(Error::Invalid(format!(
                        "{name} is larger than the attachment limit of {limit} bytes"
                    )));
                }
                sha.update(&chunk[..filled]);
                sqlx::query(
                    "INSERT INTO attachment_chunks (attachment_id, seq, data) VALUES ($1, $2, $3)",
                )
                .bind(att_id)
                .bind(seq)
                .bind(&chunk[..filled])
                .execute(&mut *tx)
                .await?;
                seq += 1;
                if filled < chunk.len() {
                    break;
                }
            }
            let size = i64::try_from(size)
                .map_err(|_| Error::Invalid("attachment is too large".into()))?;
            let row = sqlx::query(
                "UPDATE attachments SET size = $2 WHERE id = $1 \
                 RETURNING id, incident_id, name, content_type, size, actor, created_at",
            )
            .bind(att_id)
            .bind(size)
            .fetch_one(&mut *tx)
            .await?;
            let attachment = rows::attachment(&row)?;
            let sha256: String = sha.finalize().iter().map(|b| format!("{b:02x}")).collect();
            let detail = json!({
                "attachment_id": attachment.id, "name": name,
                "content_type": content_type, "size": size, "sha256": sha256,
            });
            audit!(tx, id, actor, now, "attachment", detail);
            attachment
        });
        Ok(attachment)
    }

    /// The attachments of incident `id` (without their bytes), oldest first.
    pub async fn attachments(&self, id: i64) -> Result<Vec<Attachment>> {
        self.get(id).await?;
        query_all!(
            self,
            rows::attachment,
            "SELECT id, incident_id, name, content_type, size, actor, created_at \
             FROM attachments WHERE incident_id = $1 ORDER BY id",
            id
        )
    }

    /// One attachment with its bytes.
    pub async fn attachment(&self, attachment_id: i64) -> Result<(Attachment, Vec<u8>)> {
        let found = with_pool!(self, |pool| {
            match sqlx::query(
                "SELECT id, incident_id, name, content_type, size, actor, created_at, content \
                 FROM attachments WHERE id = $1",
            )
            .bind(attachment_id)
            .fetch_optional(pool)
            .await?
            {
                Some(row) => {
                    let meta = rows::attachment(&row)?;
                    let mut bytes = rows::RowGet::bytes(&row, "content")?;
                    if bytes.is_empty() && meta.size > 0 {
                        // Streamed in: the content is in numbered chunks.
                        let chunks: Vec<Vec<u8>> = sqlx::query_scalar(
                            "SELECT data FROM attachment_chunks WHERE attachment_id = $1 \
                             ORDER BY seq",
                        )
                        .bind(attachment_id)
                        .fetch_all(pool)
                        .await?;
                        bytes = chunks.concat();
                    }
                    Some((meta, bytes))
                }
                None => None,
            }
        });
        found.ok_or_else(|| Error::NotFound {
            what: "attachment",
            id: attachment_id.to_string(),
        })
    }
}

/// An attachment's name: a plain file name (no directory) of at most 255 bytes.
fn check_attachment_name(name: &str) -> Result<String> {
    let name = required("attachment name", name)?;
    if name.len() > 255 || name.contains(['/', '\\', '\0']) {
        return Err(Error::Invalid(format!(
            "attachment name {name:?} must be a plain file name of at most 255 bytes"
        )));
    }
    Ok(name)
}
