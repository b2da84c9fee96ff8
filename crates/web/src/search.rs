//! Finding incidents: `/search?q=` (the search box on every page) and `/api/search?q=`, over
//! the store's full-text search (see `incidents::SearchQuery` for the query language). Each
//! role finds the incidents of the levels it may list (an L1 agent: L1 incidents).

use askama::Template;
use axum::Json;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use incidents::{Incident, SearchQuery};
use serde::Deserialize;

use crate::AppState;
use crate::auth::{ApiUser, CurrentUser, PageUser};
use crate::error::{ApiError, AppError, AppResult, PageError};
use crate::ops;
use crate::pages::Nav;
use crate::pages::views::IncView;

#[derive(Debug, Deserialize)]
pub(crate) struct SearchParams {
    q: Option<String>,
}

/// One hit as the page lists it: the incident's head, its outcome's title if closed, and when
/// it was opened.
struct Hit {
    inc: IncView,
    outcome: String,
    opened: String,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    nav: Option<Nav>,
    q: String,
    /// `None` before a search, else the hits.
    hits: Option<Vec<Hit>>,
    error: Option<String>,
    limit: i64,
}

async fn run(state: &AppState, user: &CurrentUser, q: &str) -> AppResult<Vec<Incident>> {
    let query = SearchQuery::parse(q)?;
    let found = state.store.search(&query).await?;
    Ok(found
        .into_iter()
        .filter(|i| ops::can_see_queue(user, &i.level))
        .collect())
}

pub(crate) async fn page(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Query(p): Query<SearchParams>,
) -> Result<Response, PageError> {
    let q = p.q.unwrap_or_default().trim().to_owned();
    let (hits, error) = if q.is_empty() {
        (None, None)
    } else {
        match run(&state, &user, &q).await {
            Ok(found) => (
                Some(
                    found
                        .iter()
                        .map(|i| Hit {
                            inc: IncView::of(&state, i),
                            outcome: i
                                .outcome
                                .as_deref()
                                .map(|o| {
                                    crate::labels::outcome_title(
                                        &state.runbooks,
                                        Some(&i.runbook),
                                        o,
                                    )
                                })
                                .unwrap_or_default(),
                            opened: i.created_at.format("%Y-%m-%d %H:%M").to_string(),
                        })
                        .collect(),
                ),
                None,
            ),
            // A query the parser refuses is shown on the page, with the box to fix it.
            Err(AppError::BadRequest(m)) => (None, Some(m)),
            Err(e) => return Err(e.into()),
        }
    };
    let page = SearchPage {
        nav: Some(Nav::of(&user)),
        q,
        hits,
        error,
        limit: incidents::SEARCH_LIMIT,
    };
    Ok(Html(page.render().map_err(AppError::from)?).into_response())
}

pub(crate) async fn api(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Query(p): Query<SearchParams>,
) -> Result<Json<Vec<Incident>>, ApiError> {
    let q = p.q.unwrap_or_default();
    Ok(Json(run(&state, &user, &q).await?))
}
