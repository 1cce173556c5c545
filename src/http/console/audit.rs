//! `GET /console/audit`: the audit trail, newest first, filtered by actor, action, target
//! client and day (`since`, `until`: `YYYY-MM-DD`, UTC, both included), in pages of
//! [`PAGE_SIZE`] (`before`: the last id of the previous page).

use std::sync::Arc;

use minijinja::{Value, context};
use poem::web::Data;
use poem::{Request, Response, handler};

use super::super::AppState;
use super::{
    BadInput, ConsoleSession, PAGE_SIZE, console_page, failure_page, moment, optional_value,
    query_of,
};
use crate::ids::ClientId;
use crate::routes::{CONSOLE_AUDIT_PATH, CONSOLE_CLIENT_PATH};
use crate::store::audit::AuditFilter;

/// The start of a `YYYY-MM-DD` day (UTC) in Unix seconds.
fn day_start(text: &str) -> Option<i64> {
    let mut parts = text.splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    let month = time::Month::try_from(month).ok()?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp())
}

/// The filter of a request's query, or a `400` page.
/// The filter values a next page's link repeats, by name.
type KeptValues = Vec<(&'static str, String)>;

fn filter_of(request: &Request) -> Result<(AuditFilter, KeptValues), BadInput> {
    let query = query_of(request);
    let text = |name: &str| optional_value(&query, name).map(|v| v.map(str::to_owned));
    let day = |name: &'static str| -> Result<Option<i64>, BadInput> {
        match optional_value(&query, name)? {
            None => Ok(None),
            Some(value) => day_start(value)
                .map(Some)
                .ok_or_else(|| BadInput(format!("`{name}` must be a day written as YYYY-MM-DD."))),
        }
    };
    let before = match optional_value(&query, "before")? {
        None => None,
        Some(value) => Some(
            value
                .parse::<i32>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| BadInput("`before` must be a positive entry number.".into()))?,
        ),
    };
    let filter = AuditFilter {
        actor: text("actor")?,
        action: text("action")?,
        client_id: text("target")?,
        since: day("since")?,
        until: day("until")?.map(|start| start + 86_400),
        before_id: before,
        limit: PAGE_SIZE,
    };
    // What the next page's link repeats.
    let mut kept = Vec::new();
    for name in ["actor", "action", "target", "since", "until"] {
        if let Some(value) = optional_value(&query, name)? {
            kept.push((name, value.to_owned()));
        }
    }
    Ok((filter, kept))
}

/// The page.
#[handler]
pub async fn audit_page(
    signed_in: ConsoleSession,
    request: &Request,
    Data(state): Data<&Arc<AppState>>,
) -> Response {
    let (filter, kept) = match filter_of(request) {
        Ok(parsed) => parsed,
        Err(bad) => return bad.page(),
    };
    let paged = filter.before_id.is_some();
    let rows = match state.registry.admin_audit_filtered(filter).await {
        Ok(rows) => rows,
        Err(error) => return failure_page(error, "could not read the audit trail"),
    };
    let now = state.clock.now();
    let base = state.issuer.endpoint(CONSOLE_AUDIT_PATH);
    let link_with = |extra: &[(&str, &str)]| {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in &kept {
            serializer.append_pair(name, value);
        }
        for (name, value) in extra {
            serializer.append_pair(name, value);
        }
        format!("{base}?{}", serializer.finish())
    };
    let next_href = (rows.len() as u64 == PAGE_SIZE)
        .then(|| rows.last())
        .flatten()
        .map(|last| link_with(&[("before", &last.id.to_string())]));
    let only = |name: &str, value: &str| {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        serializer.append_pair(name, value);
        format!("{base}?{}", serializer.finish())
    };
    let entries = rows.iter().map(|r| {
        context! {
            id => r.id,
            at => moment(Some(r.at), now),
            actor => &r.actor,
            actor_href => only("actor", &r.actor),
            action => &r.action,
            action_href => only("action", &r.action),
            client_id => r.client_id.as_ref().map(ClientId::as_str),
            client_href => r.client_id.as_ref().map(|id| super::clients::link(state, CONSOLE_CLIENT_PATH, "id", id.as_str())),
            target_href => r.client_id.as_ref().map(|id| only("target", id.as_str())),
            source => &r.source_address,
            summary => &r.summary,
        }
    });
    let value = |name: &str| {
        kept.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let fields = context! {
        entries => Value::from_iter(entries),
        actor => value("actor"),
        action => value("action"),
        target => value("target"),
        since => value("since"),
        until => value("until"),
        filtered => !kept.is_empty(),
        paged,
        first_href => link_with(&[]),
        next_href,
        form_action => base.clone(),
    };
    console_page(
        state,
        &signed_in.session,
        "audit",
        CONSOLE_AUDIT_PATH,
        fields,
    )
}

#[cfg(test)]
mod tests {
    use super::day_start;

    #[test]
    fn days() {
        assert_eq!(day_start("1970-01-02"), Some(86_400));
        assert_eq!(day_start("2026-11-30"), Some(1_795_996_800));
        for bad in [
            "",
            "2026-13-01",
            "2026-02-30",
            "-1",
            "2026-1",
            "x-y-z",
            "99999999999-01-01",
        ] {
            assert_eq!(day_start(bad), None, "{bad}");
        }
    }
}
