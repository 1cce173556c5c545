//! Client ID Metadata Documents as operators see them: the cached documents (and remembered
//! failures), read as stored and never re-validated, for the console's list of clients.

use serde_json::Value;

use super::admin::{AdminError, MAX_PAGE};
use super::registry::Registry;
use super::stored::stored_redirect_uris;
use crate::ids::ClientId;
use crate::store::client_documents::ClientDocumentRow;

/// A cached metadata document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentView {
    /// The document's URL, which is the client's id.
    pub url: ClientId,
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub fetched_at: i64,
    pub expires_at: i64,
    /// Why the URL was refused, for a remembered failure.
    pub failure: Option<String>,
}

impl DocumentView {
    fn from_row(row: ClientDocumentRow) -> Self {
        let document: Value = serde_json::from_str(&row.document).unwrap_or(Value::Null);
        let client_name = document
            .get("client_name")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let redirect_uris = document
            .as_object()
            .map(stored_redirect_uris)
            .unwrap_or_default();
        Self {
            url: row.url,
            client_name,
            redirect_uris,
            fetched_at: row.fetched_at,
            expires_at: row.expires_at,
            failure: row.failure,
        }
    }
}

impl Registry {
    /// Cached metadata documents ordered by URL, whose URL or document contains `search`;
    /// the cursor of the next page when this one is full.
    pub async fn admin_list_documents(
        &self,
        search: Option<&str>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<(Vec<DocumentView>, Option<String>), AdminError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let rows = self
            .store()
            .list_client_documents(search, after, limit)
            .await?;
        let next = (rows.len() as u64 == limit)
            .then(|| rows.last().map(|r| r.url.to_string()))
            .flatten();
        Ok((rows.into_iter().map(DocumentView::from_row).collect(), next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_document_is_read_as_stored_and_never_fails() {
        let row = |document: &str| ClientDocumentRow {
            url: ClientId::from_stored("https://app.example/client.json".into()),
            document: document.into(),
            fetched_at: 1,
            expires_at: 2,
            failure: None,
            failure_temporary: false,
        };
        let view = DocumentView::from_row(row(
            r#"{"client_name":"App","redirect_uris":["https://app.example/cb",7]}"#,
        ));
        assert_eq!(view.client_name.as_deref(), Some("App"));
        assert_eq!(view.redirect_uris, ["https://app.example/cb"]);
        for odd in ["", "[]", "not json", r#"{"client_name":5}"#] {
            let view = DocumentView::from_row(row(odd));
            assert_eq!(
                (view.client_name, view.redirect_uris.len()),
                (None, 0),
                "{odd}"
            );
        }
    }
}
