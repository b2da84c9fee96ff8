//! Who is asking: Argon2id passwords, session cookies, API bearer tokens, CSRF tokens and roles.
//!
//! Only SHA-256 hashes of session and API tokens reach the store, so a leaked database opens no
//! session. The CSRF token is derived from the session token (a keyed hash the server can
//! recompute from the cookie), so it needs no storage and works across instances sharing a store.

use std::fmt;

use argon2::password_hash::PasswordHasher;
use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, Version};
use axum::Form;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::{AppError, AppResult, Error, Result};

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "dialtone_session";
/// The login form's double-submit cookie (there is no session yet to derive a CSRF token from).
pub(crate) const LOGIN_COOKIE: &str = "dialtone_login";

/// Hashes a password with Argon2id (default parameters) into a PHC string, for the store.
pub fn hash_password(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::PasswordHash(e.to_string()))
}

/// Hashes with explicit Argon2id costs (memory in KiB, iterations). Verification reads the costs
/// back from the PHC string; tests and benchmarks use cheap costs so a debug build logs in fast.
pub fn hash_password_with_cost(password: &str, m_cost_kib: u32, t_cost: u32) -> Result<String> {
    let params =
        Params::new(m_cost_kib, t_cost, 1, None).map_err(|e| Error::PasswordHash(e.to_string()))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::PasswordHash(e.to_string()))
}

/// The library's own verification, the reference the kept-memory one is tested against.
#[cfg(test)]
pub(crate) fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::PasswordVerifier as _;
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Password verifications on a fixed set of threads (one per login slot), each with its own
/// Argon2 memory kept from one verification to the next. Allocating the memory cost (19 MiB by
/// default) per verification grew the server by about that much per wrong login, up to some
/// 300 MB, as the allocator kept the freed blocks in ever more arenas; now logins hold at most
/// the slots times the largest memory cost.
pub(crate) struct Verifier {
    jobs: std::sync::Mutex<std::sync::mpsc::Sender<VerifyJob>>,
}

/// A verification, run with its thread's Argon2 memory.
type VerifyJob = Box<dyn FnOnce(&mut Vec<argon2::Block>) + Send>;

/// Verifies like [`verify_password`], with Argon2's memory taken from `memory` (grown to the
/// hash's memory cost when smaller, then kept for the next verification): no allocation of the
/// memory cost per login.
fn verify_password_with(password: &str, phc: &str, memory: &mut Vec<argon2::Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let (Ok(params), Ok(algorithm)) = (
        Params::try_from(&parsed),
        Algorithm::try_from(parsed.algorithm.as_str()),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, argon2::Block::default());
    }
    let mut out = vec![0u8; expected.as_bytes().len()];
    let Some(work) = memory.get_mut(..blocks) else {
        return false;
    };
    if Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, work)
        .is_err()
    {
        return false;
    }
    // Output compares in constant time.
    argon2::password_hash::phc::Output::new(&out).is_ok_and(|o| &o == expected)
}

impl Verifier {
    /// Starts `threads` verification threads; they end when the verifier is dropped.
    pub(crate) fn new(threads: usize) -> Verifier {
        let (tx, rx) = std::sync::mpsc::channel::<VerifyJob>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let started = std::thread::Builder::new()
                .name(format!("dialtone-login-{i}"))
                .spawn(move || {
                    let mut memory = Vec::new();
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&mut memory),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = started {
                tracing::error!(error = %e, "cannot start a login verification thread");
            }
        }
        Verifier {
            jobs: std::sync::Mutex::new(tx),
        }
    }

    /// Verifies `password` against `hash` (the dummy hash when `None`), holding `slot` until
    /// the verification has run.
    pub(crate) async fn verify<S: Send + 'static>(
        &self,
        password: String,
        hash: Option<String>,
        slot: S,
    ) -> bool {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: VerifyJob = Box::new(move |memory| {
            let hash = hash.unwrap_or_else(dummy_hash);
            let ok = verify_password_with(&password, &hash, memory);
            drop(slot);
            let _ = tx.send(ok);
        });
        let sent = matches!(
            self.jobs.lock().map(|jobs| jobs.send(job).is_ok()),
            Ok(true)
        );
        if !sent {
            return false;
        }
        rx.await.unwrap_or(false)
    }
}

/// A hash of a password nobody knows, with the default costs: logins of unknown or disabled
/// users verify against it, so they take as long as a real one and timing does not tell
/// whether an account exists. Computed once, on first use (call it on a blocking thread).
pub(crate) fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| hash_password(&new_token()).unwrap_or_default())
        .clone()
}

/// A fresh random 32-byte token, hex encoded.
pub(crate) fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

pub(crate) fn sha256_hex(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The CSRF token of a session: a hash of the session token under a fixed label. An attacker
/// without the cookie cannot compute it; the store never sees it.
pub(crate) fn csrf_for(session_token: &str) -> String {
    sha256_hex(&format!("dialtone-csrf\0{session_token}"))
}

/// Compares two strings in time independent of where they differ.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// How long an API token lasts unless told otherwise: 90 days.
pub const DEFAULT_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(90 * 24 * 3600);

/// Creates an API token for `username` lasting [`DEFAULT_TOKEN_TTL`], logged as made by
/// `system`, and returns it. See [`create_api_token_for`].
pub async fn create_api_token(
    store: &incidents::Store,
    username: &str,
    label: &str,
) -> Result<String> {
    create_api_token_for(store, username, label, Some(DEFAULT_TOKEN_TTL), "system").await
}

/// Creates an API token for `username` valid for `ttl` (`None`: no expiry), logged with
/// `actor`, and returns it; only its hash is stored, so this is the one time it can be shown.
/// The CLI calls this too.
pub async fn create_api_token_for(
    store: &incidents::Store,
    username: &str,
    label: &str,
    ttl: Option<std::time::Duration>,
    actor: &str,
) -> Result<String> {
    if store.user(username).await?.is_none() {
        return Err(Error::Invalid(format!("no such user: {username}")));
    }
    let expires_at = match ttl {
        Some(ttl) => Some(
            chrono::Utc::now()
                + chrono::Duration::from_std(ttl)
                    .map_err(|_| Error::Invalid("token lifetime too long".to_owned()))?,
        ),
        None => None,
    };
    let token = format!("dt_{}", new_token());
    store
        .create_api_token(&sha256_hex(&token), username, label, expires_at, actor)
        .await?;
    Ok(token)
}

/// The roles of the web app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    L1,
    L2,
    /// The support lead: an L2 engineer who also reads the reports.
    Lead,
    Admin,
}

impl Role {
    pub(crate) fn parse(s: &str) -> Option<Role> {
        match s {
            "l1" => Some(Role::L1),
            "l2" => Some(Role::L2),
            "lead" => Some(Role::Lead),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::L1 => "l1",
            Role::L2 => "l2",
            Role::Lead => "lead",
            Role::Admin => "admin",
        }
    }

    /// The highest incident level this role works, for the incident rules.
    pub(crate) fn level(self) -> runbook::Level {
        match self {
            Role::L1 => runbook::Level::L1,
            Role::L2 | Role::Lead | Role::Admin => runbook::Level::L2,
        }
    }
}

/// How the request proved who it is.
#[derive(Clone)]
pub(crate) enum Via {
    /// A session cookie; the CSRF token every POST must carry.
    Session { token_hash: String, csrf: String },
    /// An API bearer token (scripts): no CSRF, as no browser sends it on its own.
    Token { token_hash: String },
}

/// The logged-in person.
#[derive(Clone)]
pub(crate) struct CurrentUser {
    pub(crate) username: String,
    pub(crate) role: Role,
    pub(crate) via: Via,
}

// Debug without the session hash or CSRF token: they must not reach logs.
impl fmt::Debug for CurrentUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurrentUser")
            .field("username", &self.username)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl CurrentUser {
    /// The CSRF token to embed in forms (empty for API tokens).
    pub(crate) fn csrf(&self) -> &str {
        match &self.via {
            Via::Session { csrf, .. } => csrf,
            Via::Token { .. } => "",
        }
    }

    /// Checks a submitted CSRF token; bearer-token requests are exempt.
    pub(crate) fn check_csrf(&self, submitted: Option<&str>) -> AppResult<()> {
        match &self.via {
            Via::Token { .. } => Ok(()),
            Via::Session { csrf, .. } => match submitted {
                Some(s) if same(s, csrf) => Ok(()),
                _ => Err(AppError::Forbidden(
                    "the form's CSRF token is missing or wrong; reload the page and try again"
                        .to_owned(),
                )),
            },
        }
    }

    pub(crate) fn require(&self, ok: bool, what: &str) -> AppResult<()> {
        if ok {
            Ok(())
        } else {
            Err(AppError::forbidden(what))
        }
    }
}

pub(crate) fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Finds who is asking: a bearer token first, then the session cookie. `Ok(None)` is anonymous
/// (or expired, or disabled).
pub(crate) async fn authenticate(
    parts: &Parts,
    state: &AppState,
) -> AppResult<Option<CurrentUser>> {
    let bearer = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let (username, via) = if let Some(token) = bearer {
        let token_hash = sha256_hex(token.trim());
        match state.store.api_token(&token_hash).await? {
            Some(t) => (t.username, Via::Token { token_hash }),
            None => return Ok(None),
        }
    } else if let Some(token) = cookie(parts, SESSION_COOKIE) {
        let token_hash = sha256_hex(token);
        match state.store.session(&token_hash).await? {
            Some(s) if s.expires_at > chrono::Utc::now() => (
                s.username,
                Via::Session {
                    token_hash,
                    csrf: csrf_for(token),
                },
            ),
            _ => return Ok(None),
        }
    } else {
        return Ok(None);
    };
    let Some(user) = state.store.user(&username).await? else {
        return Ok(None);
    };
    if user.disabled {
        return Ok(None);
    }
    let Some(role) = Role::parse(&user.role) else {
        return Ok(None);
    };
    Ok(Some(CurrentUser {
        username,
        role,
        via,
    }))
}

/// A logged-in user for a page; anonymous requests are sent to the login form.
pub(crate) struct PageUser(pub(crate) CurrentUser);

impl FromRequestParts<AppState> for PageUser {
    type Rejection = crate::error::PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match authenticate(parts, state).await? {
            Some(u) => {
                // Kept for the request's other extractors ([`CsrfForm`]): one lookup per request.
                parts.extensions.insert(u.clone());
                Ok(PageUser(u))
            }
            None => Err(AppError::Unauthorized.into()),
        }
    }
}

/// A logged-in administrator; other roles get 403, anonymous requests the login form.
pub(crate) struct AdminUser(pub(crate) CurrentUser);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = crate::error::PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let PageUser(user) = PageUser::from_request_parts(parts, state).await?;
        user.require(user.role == Role::Admin, "administration")?;
        Ok(AdminUser(user))
    }
}

/// A page form that carries the session's CSRF token in a `csrf` field.
pub(crate) trait CsrfField {
    /// The token the form submitted, if any.
    fn csrf(&self) -> Option<&str>;
}

/// Declares a form struct with a `csrf` field besides its own (deserialized from the form) and
/// its [`CsrfField`], so [`CsrfForm`] checks the token before the handler sees the form.
macro_rules! csrf_form {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$fmeta:meta])* $fvis:vis $field:ident : $ty:ty),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(serde::Deserialize)]
        $vis struct $name {
            #[serde(default)]
            csrf: Option<String>,
            $($(#[$fmeta])* $fvis $field: $ty,)*
        }

        impl $crate::auth::CsrfField for $name {
            fn csrf(&self) -> Option<&str> {
                self.csrf.as_deref()
            }
        }
    };
}
pub(crate) use csrf_form;

/// A form of name/value pairs (the gate questions of a new incident): its first `csrf` pair.
impl CsrfField for Vec<(String, String)> {
    fn csrf(&self) -> Option<&str> {
        self.iter()
            .find(|(name, _)| name == "csrf")
            .map(|(_, value)| value.as_str())
    }
}

/// A page form whose `csrf` field is checked against the session before the handler runs
/// (bearer-token requests are exempt). A body that is no such form is refused as axum's `Form`
/// refuses it; a missing or wrong token is 403. The user is the one [`PageUser`] found (or is
/// looked up when the handler takes no `PageUser`).
pub(crate) struct CsrfForm<T>(pub(crate) T);

impl<T> FromRequest<AppState> for CsrfForm<T>
where
    T: DeserializeOwned + CsrfField + Send,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let user = match parts.extensions.get::<CurrentUser>() {
            Some(u) => u.clone(),
            None => {
                PageUser::from_request_parts(&mut parts, state)
                    .await
                    .map_err(IntoResponse::into_response)?
                    .0
            }
        };
        let Form(form) = Form::<T>::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        user.check_csrf(form.csrf())
            .map_err(|e| crate::error::PageError(e).into_response())?;
        Ok(CsrfForm(form))
    }
}

/// A logged-in user for the API; anonymous requests get 401 JSON.
pub(crate) struct ApiUser(pub(crate) CurrentUser);

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = crate::error::ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let user = match authenticate(parts, state).await? {
            Some(u) => u,
            None => return Err(AppError::Unauthorized.into()),
        };
        // A browser session calling the API must prove it is our own page (CSRF) on writes.
        if parts.method != axum::http::Method::GET {
            let header = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok());
            user.check_csrf(header)?;
        }
        Ok(ApiUser(user))
    }
}

/// The Set-Cookie value for a session.
pub(crate) fn session_cookie(token: &str, max_age_secs: u64, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The Set-Cookie value that removes a cookie.
pub(crate) fn clear_cookie(name: &str, secure: bool) -> String {
    format!(
        "{name}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// An incident's level ("L1", "L2", "L3"); `None` for anything else.
pub(crate) fn level_of(level: &str) -> Option<runbook::Level> {
    level
        .parse::<runbook::Level>()
        .ok()
        .filter(|l| *l != runbook::Level::Gate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let h = hash_password_with_cost("s3cret-pass", 256, 1).expect("hash");
        assert!(h.starts_with("$argon2id$"));
        let table = [
            ("s3cret-pass", h.as_str(), true),
            ("s3cret-pasS", h.as_str(), false),
            ("", h.as_str(), false),
            ("s3cret-pass", "not a phc string", false),
        ];
        // One memory for all, as a verification thread keeps it: a smaller cost after a larger
        // one uses part of it; the default cost (the dummy hash) grows it.
        let mut memory = Vec::new();
        let strong = hash_password("an-other-pass").expect("hash");
        let weak_again = hash_password_with_cost("third-pass", 64, 1).expect("hash");
        let more = [
            ("an-other-pass", strong.as_str(), true),
            ("an-other-pasz", strong.as_str(), false),
            ("third-pass", weak_again.as_str(), true),
            ("s3cret-pass", weak_again.as_str(), false),
        ];
        for (pw, phc, ok) in table.into_iter().chain(more) {
            assert_eq!(verify_password(pw, phc), ok, "{pw:?} against {phc:?}");
            assert_eq!(
                verify_password_with(pw, phc, &mut memory),
                ok,
                "{pw:?} against {phc:?} with kept memory"
            );
        }
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_compare_exactly() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_ne!(csrf_for(&a), csrf_for(&b));
        assert!(same(&csrf_for(&a), &csrf_for(&a)));
        assert!(!same(&csrf_for(&a), &csrf_for(&a)[1..]));
        assert!(!same(&csrf_for(&a), &csrf_for(&b)));
    }

    #[test]
    fn debug_output_never_shows_session_secrets() {
        let u = CurrentUser {
            username: "lena".into(),
            role: Role::L1,
            via: Via::Session {
                token_hash: "HASHVALUE".into(),
                csrf: "CSRFVALUE".into(),
            },
        };
        let d = format!("{u:?}");
        assert!(d.contains("lena"));
        assert!(!d.contains("HASHVALUE") && !d.contains("CSRFVALUE"), "{d}");
    }
}
